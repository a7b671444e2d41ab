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
