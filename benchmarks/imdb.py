"""IMDB as the benchmarks read it: the labeled train and test reviews, ``<br />`` tags as spaces.

The reviews carry HTML line breaks; WordPiece would read each as the pieces ``<``, ``br``,
``/``, ``>`` and spend sequence positions on them, so every IMDB benchmark drops them the same
way (warmstart's ``words`` tokenizer already reads a tag as a space).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def without_br(ds: Any) -> Any:
    """``ds`` (a ``LabeledDataset``) with ``<br />`` tags replaced by spaces."""
    return dataclasses.replace(ds, texts=[t.replace("<br />", " ") for t in ds.texts])


def read_imdb(data: Path) -> tuple[Any, Any]:
    """The 25,000 train and the 25,000 test reviews of ``data/en/imdb``, tags removed; the
    test set shares the train set's label order."""
    from warmstart.labeled import LabeledDataset

    d = Path(data) / "en" / "imdb"
    train = without_br(LabeledDataset.read(d / "train.tsv.gz"))
    return train, without_br(LabeledDataset.read(d / "test.tsv.gz", labels=train.labels))


def held_out(train: Any, labeled: Any, per_class: int, seed: int) -> Any:
    """A development set drawn from ``train`` (``per_class`` reviews per class, with
    ``seed``): only reviews that are not among ``labeled``, the labels a run trains on, so
    settings are chosen on reviews no model of that run has seen, and never on test."""
    taken = set(labeled.texts)
    rest = train.subset([i for i, t in enumerate(train.texts) if t not in taken])
    return rest.sample_per_class(per_class, seed=seed)
