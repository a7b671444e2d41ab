"""warmstart: pretrain text representations on your own corpus, transfer them to classifiers.

    >>> from warmstart import Corpus, train_vectors
    >>> kv = train_vectors(Corpus("reviews.txt"), out="vecs", dim=100)   # doctest: +SKIP
    >>> kv.most_similar("good", topn=5)                                  # doctest: +SKIP
    >>> from warmstart import pretrain
    >>> run = pretrain("reviews.txt", out="mlm", objective="mlm", time_budget="20m")  # doctest: +SKIP
    >>> from warmstart import Classifier, finetune
    >>> clf = finetune("train.tsv", init="mlm", out="clf").classifier                 # doctest: +SKIP
    >>> Classifier.load("clf").predict(["a wonderful film"])                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that `import warmstart` (and the CLI's --help) stays fast.
_LAZY = {
    "WarmstartError": "warmstart.errors",
    "Corpus": "warmstart.corpus",
    "make_tokenizer": "warmstart.tokenize",
    "TokenizerConfig": "warmstart.tokenize.subword",
    "train_tokenizer": "warmstart.tokenize.subword",
    "KeyedVectors": "warmstart.vectors.keyed",
    "VectorsConfig": "warmstart.vectors.train",
    "train_vectors": "warmstart.vectors.train",
    "neighbors": "warmstart.vectors.lookup",
    "import_vectors": "warmstart.vectors.formats",
    "export_vectors": "warmstart.vectors.formats",
    "evaluate_vectors": "warmstart.evaluation.intrinsic",
    "evaluate_analogies": "warmstart.evaluation.intrinsic",
    "evaluate_word_pairs": "warmstart.evaluation.intrinsic",
    "TransformerConfig": "warmstart.models.transformer",
    "Encoder": "warmstart.models.transformer",
    "Decoder": "warmstart.models.transformer",
    "load_pretrained": "warmstart.models.io",
    "import_model": "warmstart.models.io",
    "export_model": "warmstart.models.export",
    "PretrainConfig": "warmstart.pretraining",
    "pretrain": "warmstart.pretraining",
    "LabeledDataset": "warmstart.labeled",
    "finetune": "warmstart.transfer.finetune",
    "Classifier": "warmstart.transfer.classifier",
    "evaluate": "warmstart.transfer.classifier",
    "predict": "warmstart.transfer.classifier",
    "augment_dataset": "warmstart.transfer.augment.dataset",
    "tune": "warmstart.tuning.study",
    "TuneConfig": "warmstart.tuning.study",
    "embed": "warmstart.embedding",
    "serve": "warmstart.serving",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'warmstart' has no attribute {name!r}")
