"""Data augmentation for text classification, one module per concern.

* :mod:`~warmstart.transfer.augment.base`: the
  :class:`~warmstart.transfer.augment.base.Augmenter` interface, ``OneOf`` and ``augment_copies``.
* :mod:`~warmstart.transfer.augment.eda`: EDA's word operations with synonyms from word vectors.
* :mod:`~warmstart.transfer.augment.mlm`: contextual replacement by a warmstart MLM.
* :mod:`~warmstart.transfer.augment.dataset`: the settings of ``warmstart augment``, the
  augmenter they describe, and :func:`augment_dataset`, which writes a labeled dataset with
  its copies as JSONL.
"""
