"""Labeled text for classification: texts, labels (single or multi), a label map, sampling.

:class:`LabeledDataset` holds the texts of a labeled file in memory with their classes, and
makes the splits few-label learning needs: a stratified dev split and ``n`` examples per
class, both seeded and deterministic.

    >>> train = LabeledDataset.read("agnews/train.tsv", has_header=False,
    ...                             text_field="0", label_field="1")      # doctest: +SKIP
    >>> test = LabeledDataset.read("agnews/test.tsv", has_header=False, text_field="0",
    ...                            label_field="1", labels=train.labels)  # doctest: +SKIP
    >>> few = train.sample_per_class(8, seed=1)                           # doctest: +SKIP

The formats read (CSV/TSV/JSONL, fastText, class folders) are described, and read, in
:mod:`warmstart.labeled_formats`.

Labels are strings or integers. The label map is the sorted set of labels (numerically when all
of them are integers, else lexicographically), or the one given as ``labels=`` (a train set's,
when reading its dev or test set). A dataset is multi-label when some example has more than
one label, unless ``multi_label=`` says otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.config import opt
from warmstart.corpus import PathArg
from warmstart.errors import WarmstartError
from warmstart.labeled_formats import N_SHOWN, Example, read_examples, shorten

_INT = re.compile(r"[+-]?\d+")


@dataclass
class ReadConfig:
    """How to read labeled files: the options of every command that reads them."""

    text_field: str = opt("text", "CSV/TSV column or JSONL field holding the text")
    label_field: str = opt("label", "CSV/TSV column or JSONL field holding the label(s)")
    no_header: bool = opt(False, "CSV/TSV files have no header; fields are column indexes")
    label_sep: str = opt("", "split a label cell on this into several labels (multi-label)")

    def read(self, path: PathArg, **kw: Any) -> LabeledDataset:
        """:meth:`LabeledDataset.read` with these settings (``kw``: labels=, multi_label=...)."""
        return LabeledDataset.read(path, text_field=self.text_field, label_field=self.label_field,
                                   has_header=not self.no_header,
                                   label_sep=self.label_sep or None, **kw)


@dataclass(eq=False, repr=False)
class LabeledDataset:
    """Texts with their classes, for training and evaluating a text classifier.

    ``y`` is a ``(N,)`` int64 array of class ids for single-label data, or a ``(N, K)`` uint8
    0/1 indicator matrix when ``multi_label``. ``labels[i]`` is the name of class ``i``.
    Read one with :meth:`read`; the methods return new datasets and never modify this one.

        >>> ds = LabeledDataset.read("reviews.jsonl")       # doctest: +SKIP
        >>> train, dev = ds.split(0.1, seed=0)              # doctest: +SKIP
        >>> train.class_counts()                            # doctest: +SKIP
        {'neg': 450, 'pos': 450}
    """

    texts: list[str]
    y: np.ndarray  # (N,) int64 class ids, or (N, K) uint8 indicators when multi_label
    labels: list[str]  # class names; index = class id
    multi_label: bool
    source: str  # the file or folder read, for messages and provenance
    #: Line of ``source`` each example starts on (1-based), for messages; None if unknown.
    line_numbers: np.ndarray | None = field(default=None)
    #: The file each example was read from, for the folder layout (one file per example).
    doc_files: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        want = 2 if self.multi_label else 1
        if self.y.ndim != want or len(self.y) != len(self.texts):
            raise ValueError(
                f"y has shape {self.y.shape}; expected ({len(self.texts)},"
                f"{' ' + str(len(self.labels)) if self.multi_label else ''})"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        shown = shorten(self.labels)
        return (
            f"LabeledDataset({self.source!r}, n={len(self)}, labels=[{shown}], "
            f"multi_label={self.multi_label})"
        )

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def read(
        cls,
        path: PathArg,
        *,
        text_field: str = "text",
        label_field: str = "label",
        has_header: bool = True,
        label_sep: str | None = None,
        format: str | None = None,
        labels: Sequence[str] | None = None,
        multi_label: bool | None = None,
    ) -> LabeledDataset:
        """Read a labeled file or class-per-folder tree (the formats are
        :mod:`warmstart.labeled_formats`'s).

        ``labels``: use this label map (a train set's ``labels``) instead of the sorted labels
        found; a label outside it is an error naming its file and line. ``multi_label``: None
        decides by the data (some example has several labels); True always gives an
        indicator matrix (pass ``multi_label=train.multi_label`` for a dev or test set); False
        makes an example with several labels an error. User mistakes raise
        :class:`~warmstart.errors.WarmstartError` naming the file, line and what to do.
        """
        p = Path(os.path.expanduser(os.fspath(path)))
        rows = read_examples(p, text_field=text_field, label_field=label_field,
                             has_header=has_header, label_sep=label_sep, format=format)
        return _build(rows, source=str(p), labels=labels, multi_label=multi_label)

    # -- views -----------------------------------------------------------------------------

    def subset(self, idx: Sequence[int] | np.ndarray) -> LabeledDataset:
        """The examples at ``idx`` (positions, or a boolean mask), in that order."""
        index = np.asarray(idx)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False).reshape(-1)
        positions = index.tolist()
        return LabeledDataset(
            texts=[self.texts[i] for i in positions],
            y=self.y[index],
            labels=list(self.labels),
            multi_label=self.multi_label,
            source=self.source,
            line_numbers=None if self.line_numbers is None else self.line_numbers[index],
            doc_files=None if self.doc_files is None else [self.doc_files[i] for i in positions],
        )

    def split(
        self, dev_fraction: float = 0.1, *, seed: int = 0
    ) -> tuple[LabeledDataset, LabeledDataset]:
        """Split into ``(train, dev)``, stratified by class, seeded; both keep the file order.

        Each class gives ``round(count * dev_fraction)`` examples to dev, so class proportions
        hold to within one example per class. A multi-label example is stratified by its
        rarest label.
        """
        if not 0.0 < dev_fraction < 1.0:
            raise WarmstartError(
                f"--dev-fraction {dev_fraction}: must be between 0 and 1, e.g. 0.1"
            )
        rng = np.random.default_rng(seed)
        strata = self._strata()
        dev = np.zeros(len(self), dtype=bool)
        for c in range(len(self.labels) + 1):
            members = np.flatnonzero(strata == c)
            n_dev = int(round(len(members) * dev_fraction))
            dev[rng.permutation(members)[:n_dev]] = True
        n_dev = int(dev.sum())
        if n_dev == 0 or n_dev == len(self):
            part = "dev" if n_dev == 0 else "train"
            raise WarmstartError(
                f"{self.source}: --dev-fraction {dev_fraction} of {len(self)} example(s) leaves "
                f"the {part} set empty; choose a --dev-fraction nearer 0.5, or use more data"
            )
        return self.subset(~dev), self.subset(dev)

    def sample_per_class(self, n: int, *, seed: int = 0) -> LabeledDataset:
        """``n`` examples of each class, drawn with ``seed``; the result keeps the file order.

        Single-label: exactly ``n`` per class. Multi-label: labels are filled greedily from the
        rarest up, so each label has at least ``n`` examples (more where labels co-occur).
        A class with fewer than ``n`` examples is an error that lists the short classes.
        """
        if n < 1:
            raise WarmstartError(f"n (--n-per-class) is {n}; it must be at least 1")
        counts = self._counts()
        short = [(self.labels[k], int(counts[k])) for k in range(len(self.labels))
                 if counts[k] < n]
        if short:
            listed = ", ".join(f"{name!r} has {c}" for name, c in short[:N_SHOWN])
            more = f" and {len(short) - N_SHOWN} more" if len(short) > N_SHOWN else ""
            raise WarmstartError(
                f"{self.source}: cannot take {n} example(s) per class: {listed}{more}; "
                f"choose n at most {min(c for _, c in short)}, or add examples of these classes"
            )
        rng = np.random.default_rng(seed)
        if not self.multi_label:
            picked = [rng.choice(np.flatnonzero(self.y == k), size=n, replace=False)
                      for k in range(len(self.labels))]
            return self.subset(np.sort(np.concatenate(picked)))
        chosen = np.zeros(len(self), dtype=bool)
        filled: list[int] = []
        for k in np.argsort(counts, kind="stable").tolist():
            has_k = self.y[:, k].astype(bool)
            need = n - int((has_k & chosen).sum())
            if need > 0:
                candidates = rng.permutation(np.flatnonzero(has_k & ~chosen))
                # prefer examples that add nothing to the (rarer) labels already filled
                overshoot = self.y[candidates][:, filled].sum(axis=1)
                chosen[candidates[np.argsort(overshoot, kind="stable")][:need]] = True
            filled.append(k)
        return self.subset(chosen)

    def with_labels(self, labels: Sequence[str]) -> LabeledDataset:
        """The same examples re-indexed onto ``labels`` (e.g. the train set's label map).

        A label of this dataset that ``labels`` lacks is an error naming the file and line of
        its first example.
        """
        mapping = _label_index(labels, self.source)
        present = np.flatnonzero(self._counts() > 0)
        for k in present:
            if self.labels[k] not in mapping:
                i = int(np.flatnonzero(self.y[:, k] if self.multi_label else self.y == k)[0])
                raise _unseen_label(self._where(i), self.labels[k], labels)
        new = np.array([mapping.get(name, -1) for name in self.labels], dtype=np.int64)
        if self.multi_label:
            y = np.zeros((len(self), len(mapping)), dtype=np.uint8)
            y[:, new[present]] = self.y[:, present]
        else:
            y = new[self.y] if len(new) else self.y.copy()
        return LabeledDataset(
            texts=self.texts, y=y, labels=list(labels), multi_label=self.multi_label,
            source=self.source, line_numbers=self.line_numbers, doc_files=self.doc_files,
        )

    # -- summaries -------------------------------------------------------------------------

    def class_counts(self) -> dict[str, int]:
        """Examples per class (multi-label: examples carrying each label), in label-map order."""
        return {name: int(c) for name, c in zip(self.labels, self._counts(), strict=True)}

    def content_hash(self) -> str:
        """A short, stable hash of the texts and their label names, for provenance.

        It does not depend on the label map's order or on where the data was read from.
        """
        h = hashlib.sha256()
        for i, text in enumerate(self.texts):
            h.update(text.encode("utf-8"))
            h.update(b"\x1f")
            h.update("\x1e".join(self._names(i)).encode("utf-8"))
            h.update(b"\x1d")
        return h.hexdigest()[:16]

    # -- helpers ---------------------------------------------------------------------------

    def _counts(self) -> np.ndarray:
        if self.multi_label:
            return np.asarray(self.y.sum(axis=0), dtype=np.int64)
        return np.bincount(self.y, minlength=len(self.labels)).astype(np.int64)

    def _names(self, i: int) -> list[str]:
        if self.multi_label:
            return [self.labels[k] for k in np.flatnonzero(self.y[i])]
        return [self.labels[int(self.y[i])]]

    def _strata(self) -> np.ndarray:
        """One class per example to stratify by: its class, or its rarest label (K if none)."""
        if not self.multi_label:
            return self.y
        counts = self._counts()
        # labels without examples never win; ties go to the lower class id
        rarity = np.where(self.y.astype(bool), counts[None, :], np.iinfo(np.int64).max)
        strata = np.argmin(rarity, axis=1) if len(self.labels) else np.zeros(len(self), int)
        strata[self.y.sum(axis=1) == 0] = len(self.labels)
        return strata

    def _where(self, i: int) -> str:
        if self.doc_files is not None:
            return self.doc_files[i]
        if self.line_numbers is not None:
            return f"{self.source}:{int(self.line_numbers[i])}"
        return f"{self.source} (example {i + 1})"


# -- label maps ----------------------------------------------------------------------------


def _sort_labels(names: Sequence[str]) -> list[str]:
    """Label names in label-map order: numerically if all are integers, else as strings."""
    unique = set(names)
    if all(_INT.fullmatch(n) for n in unique):
        return sorted(unique, key=lambda n: (int(n), n))
    return sorted(unique)


def _label_index(labels: Sequence[str], source: str) -> dict[str, int]:
    mapping = {str(name): i for i, name in enumerate(labels)}
    if len(mapping) != len(labels):
        dup = next(n for n in labels if list(labels).count(n) > 1)
        raise WarmstartError(
            f"{source}: the label map given has {dup!r} twice; pass each class name once"
        )
    return mapping


def _unseen_label(where: str, name: str, labels: Sequence[str]) -> WarmstartError:
    return WarmstartError(
        f"{where}: label {name!r} is not in the label map ({len(labels)} labels: "
        f"{shorten(labels)}), so the training data has no example of it; fix or drop this "
        "line, or add examples of it to the training data"
    )


def _build(
    rows: list[Example],
    *,
    source: str,
    labels: Sequence[str] | None,
    multi_label: bool | None,
) -> LabeledDataset:
    def where(row: Example) -> str:
        return row[1] if row[1] is not None else f"{source}:{row[0]}"

    several = next((r for r in rows if len(r[3]) > 1), None)
    if multi_label is False and several is not None:
        raise WarmstartError(
            f"{where(several)}: {len(several[3])} labels ({', '.join(several[3])}) but "
            "multi_label=False; give each example one label, or read it as multi-label"
        )
    multi = several is not None if multi_label is None else multi_label
    if labels is None:
        names = _sort_labels([n for r in rows for n in r[3]])
        index = {n: i for i, n in enumerate(names)}
    else:
        names = [str(n) for n in labels]
        index = _label_index(names, source)
        for r in rows:
            for n in r[3]:
                if n not in index:
                    raise _unseen_label(where(r), n, names)
    if multi:
        y = np.zeros((len(rows), len(names)), dtype=np.uint8)
        for i, r in enumerate(rows):
            y[i, [index[n] for n in r[3]]] = 1
    else:
        y = np.fromiter((index[r[3][0]] for r in rows), dtype=np.int64, count=len(rows))
    folder = rows[0][1] is not None
    return LabeledDataset(
        texts=[r[2] for r in rows],
        y=y,
        labels=names,
        multi_label=multi,
        source=source,
        line_numbers=None if folder else np.fromiter((r[0] for r in rows), np.int64, len(rows)),
        doc_files=[str(r[1]) for r in rows] if folder else None,
    )
