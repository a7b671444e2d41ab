"""Transfer: text classifiers that start from pretrained encoders or word vectors."""
