"""Labeled text for classification: texts, labels (single or multi), a label map, sampling.

:class:`LabeledDataset` holds the texts of a labeled file in memory with their classes, and
makes the splits few-label learning needs: a stratified dev split and ``n`` examples per
class, both seeded and deterministic.

    >>> train = LabeledDataset.read("agnews/train.tsv", has_header=False,
    ...                             text_field="0", label_field="1")      # doctest: +SKIP
    >>> test = LabeledDataset.read("agnews/test.tsv", has_header=False, text_field="0",
    ...                            label_field="1", labels=train.labels)  # doctest: +SKIP
    >>> few = train.sample_per_class(8, seed=1)                           # doctest: +SKIP

Formats, chosen by suffix (optionally followed by ``.gz``, ``.bz2`` or ``.xz``) or by
``format=``:

* ``.csv`` / ``.tsv`` / ``.jsonl``: the columns (fields) ``text_field`` and ``label_field``;
  without a header row (``has_header=False``) they are 0-based column indexes (``"0"``,
  ``"1"``). TSV is read without quote processing, as :mod:`warmstart.corpus` does. When the
  default text column ``text`` is absent, the one column named ``sentence``, ``review`` or
  ``content`` is used (the default label column ``label`` falls back to ``labels``, ``class``
  or ``category`` likewise); two candidates are an error, never a guess. A JSONL label may be a
  list (multi-label); ``label_sep=","`` splits a CSV/TSV label cell into several labels.
* fastText (``.ft``, or a ``.txt`` file whose first non-empty line starts with ``__label__``):
  ``__label__pos __label__other text ...``, one example per line.
* a folder with one sub-folder per class, one document per ``.txt`` file in it (the layout of
  the original IMDB release: ``train/pos/*.txt``, ``train/neg/*.txt``; a sub-folder named
  ``unsup`` or ``unlabeled``, like IMDB's ``train/unsup``, is skipped with a warning).

Labels are strings or integers. The label map is the sorted set of labels (numerically when all
of them are integers, else lexicographically), or the one given as ``labels=`` (a train set's,
when reading its dev or test set). A dataset is multi-label when some example has more than
one label, unless ``multi_label=`` says otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.config import opt
from warmstart.corpus import (
    COMPRESSIONS,
    Corpus,
    InvalidUTF8Warning,
    PathArg,
    _split_suffixes,
    json_object,
)
from warmstart.errors import WarmstartError

#: Formats ``LabeledDataset.read(format=...)`` accepts.
LABELED_FORMATS = ("csv", "tsv", "jsonl", "fasttext", "folder")
#: Format by suffix (after any compression suffix), where it differs from warmstart.corpus.
_FT_SUFFIXES = {".ft": "fasttext", ".fasttext": "fasttext"}
#: Column names tried, in this order of preference, when the default column is absent.
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "class", "category")

_FT_PREFIX = "__label__"
_FT_LABELS = re.compile(r"\s*((?:__label__\S*(?:\s+|$))+)(.*)", re.DOTALL)
_INT = re.compile(r"[+-]?\d+")
# A column index: ASCII digits only (str.isdigit also takes "²" and "①", which int() refuses).
_INDEX = re.compile(r"[0-9]+")
_SHOW = 12  # labels or columns listed in a message before "..."


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
        shown = _shorten(self.labels)
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
        """Read a labeled file or class-per-folder tree (see the module docstring for formats).

        ``labels``: use this label map (a train set's ``labels``) instead of the sorted labels
        found; a label outside it is an error naming its file and line. ``multi_label``: None
        decides by the data (some example has several labels); True always gives an
        indicator matrix (pass ``multi_label=train.multi_label`` for a dev or test set); False
        makes an example with several labels an error. User mistakes raise
        :class:`~warmstart.errors.WarmstartError` naming the file, line and what to do.
        """
        p = Path(os.path.expanduser(os.fspath(path)))
        if format is not None and format not in LABELED_FORMATS:
            raise WarmstartError(
                f"{p}: unknown format {format!r}; choose one of {', '.join(LABELED_FORMATS)}"
            )
        if not p.exists():
            raise WarmstartError(f"{p}: no such file or folder; check the path")
        bad: dict[Path, int] = {}
        if p.is_dir():
            if format not in (None, "folder"):
                raise WarmstartError(
                    f"{p}: is a folder, but format={format!r} names a file format; name a "
                    "file, or drop format= to read the folder as one sub-folder per class"
                )
            rows = _read_folder(p, bad)
        else:
            if format == "folder":
                raise WarmstartError(
                    f"{p}: format='folder' needs a folder with one sub-folder per class; "
                    "this is a file"
                )
            reader = Corpus(p)
            compression = _split_suffixes(p)[1]
            lines = reader._lines(p, compression, bad)
            fmt = format or _format_of(p)
            if fmt is None:  # a .txt file (or no known suffix): fastText if it looks like it
                lines, fmt = _sniff_fasttext(p, lines)
            found: Iterator[_Row]
            if fmt == "fasttext":
                found = _read_fasttext(p, lines)
            elif fmt == "jsonl":
                found = _read_jsonl(p, lines, text_field, label_field, label_sep)
            else:
                found = _read_table(
                    p, lines, tsv=fmt == "tsv", text_field=text_field,
                    label_field=label_field, has_header=has_header, label_sep=label_sep,
                )
            rows = list(found)
        _warn_invalid_utf8(bad)
        if not rows:
            raise WarmstartError(
                f"{p}: no labeled examples found (the file or folder is empty); check the path"
            )
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
            listed = ", ".join(f"{name!r} has {c}" for name, c in short[:_SHOW])
            more = f" and {len(short) - _SHOW} more" if len(short) > _SHOW else ""
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


# -- reading helpers -----------------------------------------------------------------------

# One example as read: (line number or 0, file or None, text, label names).
_Row = tuple[int, str | None, str, list[str]]


def _format_of(path: Path) -> str | None:
    """``csv``, ``tsv``, ``jsonl`` or ``fasttext`` by suffix; None for ``.txt`` and unknown."""
    fmt, compression = _split_suffixes(path)
    if fmt in ("csv", "tsv", "jsonl"):
        return fmt
    name = path.name.lower()
    if compression is not None:
        name = name[: -len(compression)]
    return _FT_SUFFIXES.get(os.path.splitext(name)[1])


def _sniff_fasttext(
    path: Path, lines: Iterator[tuple[int, str]]
) -> tuple[Iterator[tuple[int, str]], str]:
    """Peek at the first non-empty line: fastText if it starts with ``__label__``."""
    head: list[tuple[int, str]] = []
    for item in lines:
        head.append(item)
        if item[1].strip():
            break
    first = next((line for _, line in head if line.strip()), None)
    if first is not None and not first.lstrip().startswith(_FT_PREFIX):
        known = ", ".join(sorted({".csv", ".tsv", ".jsonl", ".ft"}))
        raise WarmstartError(
            f"{path}:{head[-1][0]}: cannot tell the labeled format: the first line does not "
            f"start with {_FT_PREFIX} (fastText), and the suffix is not one of {known} "
            "(each optionally + " + "/".join(COMPRESSIONS) + "); rename the file or pass "
            f"format= (one of {', '.join(LABELED_FORMATS)})"
        )

    def chained() -> Iterator[tuple[int, str]]:
        yield from head
        yield from lines

    return chained(), "fasttext"


def _read_fasttext(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[_Row]:
    for lineno, line in lines:
        if not line.strip():
            continue
        m = _FT_LABELS.match(line)
        if m is None:
            raise WarmstartError(
                f"{path}:{lineno}: no label: a fastText line starts with one or more "
                f"{_FT_PREFIX}<class> tokens, then the text; add the label or drop the line"
            )
        names = [tok[len(_FT_PREFIX):] for tok in m.group(1).split()]
        if any(not name for name in names):
            raise WarmstartError(
                f"{path}:{lineno}: empty label ({_FT_PREFIX} with no class name after it); "
                f"write {_FT_PREFIX}<class>"
            )
        text = m.group(2).rstrip("\r\n")
        if not text.strip():
            raise WarmstartError(
                f"{path}:{lineno}: empty text after the label(s); add the text or drop the line"
            )
        yield lineno, None, text, _dedupe(names)


def _read_jsonl(
    path: Path,
    lines: Iterator[tuple[int, str]],
    text_field: str,
    label_field: str,
    label_sep: str | None,
) -> Iterator[_Row]:
    text_key: str | None = None
    label_key: str | None = None
    for lineno, line in lines:
        if not line.strip():
            continue
        obj = json_object(path, lineno, line)
        if text_key is None or label_key is None:
            keys = [str(k) for k in obj]
            where = f"{path}:{lineno}"
            text_key = keys[_pick_column(keys, text_field, "text", TEXT_COLUMNS, where, "field")]
            label_key = keys[
                _pick_column(keys, label_field, "label", LABEL_COLUMNS, where, "field")
            ]
        for key in (text_key, label_key):
            if key not in obj:
                fields = ", ".join(map(str, list(obj)[:20])) or "none"
                raise WarmstartError(
                    f"{path}:{lineno}: no field {key!r} (fields: {fields}); every line needs "
                    "the text and label fields (--text-field, --label-field)"
                )
        text = obj[text_key]
        if not isinstance(text, str):
            raise WarmstartError(
                f"{path}:{lineno}: field {text_key!r} holds {type(text).__name__}, not a "
                "string; choose the text field with --text-field"
            )
        if not text.strip():
            raise WarmstartError(
                f"{path}:{lineno}: empty text in field {text_key!r}; add the text or drop "
                "the line"
            )
        yield lineno, None, text, _json_labels(obj[label_key], label_sep, f"{path}:{lineno}",
                                               label_key)


def _json_labels(value: Any, label_sep: str | None, where: str, key: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    names: list[str] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise WarmstartError(
                f"{where}: label field {key!r} holds {json.dumps(value)[:60]}; a label must "
                "be a string, an integer, or a list of them"
            )
        if isinstance(v, str) and label_sep:
            names.extend(v.split(label_sep))
        else:
            names.append(str(v))
    return _clean_labels(names, where, f"field {key!r}")


def _read_table(
    path: Path,
    lines: Iterator[tuple[int, str]],
    *,
    tsv: bool,
    text_field: str,
    label_field: str,
    has_header: bool,
    label_sep: str | None,
) -> Iterator[_Row]:
    kind = "TSV" if tsv else "CSV"
    dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    reader = csv.reader((line for _, line in lines), **dialect)
    try:
        if has_header:
            header = next(reader, None)
            if header is None:
                return
            names = [name.strip() for name in header]
            where = f"{path}:1"
            text_col = _pick_column(names, text_field, "text", TEXT_COLUMNS, where, "column")
            label_col = _pick_column(names, label_field, "label", LABEL_COLUMNS, where, "column")
            n_fields: int | None = len(names)
            like = "the header"
        else:
            for option, value in (("text_field", text_field), ("label_field", label_field)):
                if not _INDEX.fullmatch(value):
                    raise WarmstartError(
                        f"{path}: without a header row (has_header=False) columns are 0-based "
                        f"indexes, but {option} (--{option.replace('_', '-')}) is {value!r}; "
                        "for a `text<TAB>class` file pass text_field='0', label_field='1'"
                    )
            text_col, label_col = int(text_field), int(label_field)
            n_fields = None
            like = ""
        last = reader.line_num
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row:  # a blank line
                continue
            if n_fields is None:
                n_fields, like = len(row), f"line {start}"
                if max(text_col, label_col) >= n_fields:
                    raise WarmstartError(
                        f"{path}:{start}: row has {n_fields} column(s), but the text and label "
                        f"are columns {text_col} and {label_col} (0-based); choose other "
                        "columns with --text-field and --label-field"
                    )
            if len(row) != n_fields:
                raise WarmstartError(_field_count_message(path, start, row, n_fields, like, tsv))
            text = row[text_col]
            if not text.strip():
                raise WarmstartError(
                    f"{path}:{start}: empty text (column {text_col}); add the text or drop "
                    "the line"
                )
            cell = row[label_col]
            names = cell.split(label_sep) if label_sep else [cell]
            yield start, None, text, _clean_labels(names, f"{path}:{start}", f"column {label_col}")
    except csv.Error as e:
        raise WarmstartError(f"{path}:{reader.line_num}: malformed {kind} ({e})") from None


def _field_count_message(
    path: Path, lineno: int, row: list[str], n_fields: int, like: str, tsv: bool
) -> str:
    sep, name = ("a tab", "tab") if tsv else ("a comma", "comma")
    msg = (
        f"{path}:{lineno}: {len(row)} {name}-separated field(s), but {like} has {n_fields}; "
        f"the file is read as {'TSV' if tsv else 'CSV'} (fields separated by {sep})"
    )
    other = "," if tsv else "\t"
    if len(row) == 1 and other in row[0]:
        real = "CSV" if tsv else "TSV"
        msg += (
            f"; this line holds {'commas' if tsv else 'tabs'} but no {name}: convert it, or if "
            f"the whole file is {real}, name it .{real.lower()} or pass format={real.lower()!r}"
        )
    elif tsv:
        msg += "; check the line for a stray or missing tab (a tab inside the text)"
    else:
        msg += "; check the line for an unquoted comma or a missing field"
    return msg


def _pick_column(
    names: list[str], wanted: str, default: str, common: tuple[str, ...], where: str, what: str
) -> int:
    """Index of column ``wanted``; the one common name if ``wanted`` is the absent default."""
    if wanted in names:
        return names.index(wanted)
    option = "--text-field" if default == "text" else "--label-field"
    shown = _shorten([n[:40] + ("..." if len(n) > 40 else "") for n in names])
    if wanted == default:
        found = [n for n in names if n.lower() in common]
        if len(found) == 1:
            return names.index(found[0])
        if len(found) > 1:
            raise WarmstartError(
                f"{where}: no {what} {wanted!r}, and several {what}s could be the "
                f"{default} ({', '.join(found)}; all {what}s: {shown}); choose one with {option}"
            )
    if _INDEX.fullmatch(wanted) and what == "column" and int(wanted) < len(names):
        return int(wanted)
    hint = (
        "; if the file has no header row, use has_header=False (--no-header) and column "
        "indexes" if what == "column" else ""
    )
    raise WarmstartError(
        f"{where}: no {what} {wanted!r} ({what}s: {shown}); choose one with {option}{hint}"
    )


def _clean_labels(names: list[str], where: str, what: str) -> list[str]:
    cleaned = _dedupe([n.strip() for n in names if n.strip()])
    if not cleaned:
        raise WarmstartError(f"{where}: empty label ({what}); add the label or drop the line")
    return cleaned


def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


# Sub-folders of unlabeled texts in the folder layout (IMDB's train/unsup): not a class.
UNLABELED_FOLDERS = ("unsup", "unlabeled", "unlabelled")


def _read_folder(root: Path, bad: dict[Path, int]) -> list[_Row]:
    classes = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    skipped = [d for d in classes if d.name.lower() in UNLABELED_FOLDERS]
    for d in skipped:
        warnings.warn(f"{d}: skipped: a folder named {d.name!r} holds unlabeled texts, not a "
                      "class (use it as a pretraining corpus)", stacklevel=4)
    classes = [d for d in classes if d not in skipped]
    if not classes:
        raise WarmstartError(
            f"{root}: folder has no class sub-folders; a labeled folder holds one sub-folder "
            "per class with one .txt file per document (e.g. train/pos/*.txt, train/neg/*.txt)"
        )
    rows: list[_Row] = []
    reader: Corpus | None = None
    for folder in classes:
        files = sorted(
            f for f in folder.iterdir()
            if not f.name.startswith(".") and _split_suffixes(f)[0] == "txt" and f.is_file()
        )
        if not files:
            raise WarmstartError(
                f"{folder}: class folder holds no .txt files; put one document per .txt file "
                "in it, or move the folder out of the dataset"
            )
        if reader is None:
            reader = Corpus(files[0])
        for f in files:
            text = "".join(line for _, line in reader._lines(f, _split_suffixes(f)[1], bad))
            text = text.strip()
            if not text:
                raise WarmstartError(f"{f}: empty document; add the text or remove the file")
            rows.append((0, str(f), text, [folder.name]))
    return rows


def _warn_invalid_utf8(bad: dict[Path, int]) -> None:
    if not bad:
        return
    listed = ", ".join(f"{p} ({n})" for p, n in list(bad.items())[:5])
    if len(bad) > 5:
        listed += f" and {len(bad) - 5} more file(s)"
    warnings.warn(
        f"replaced {sum(bad.values())} invalid UTF-8 byte sequence(s) with U+FFFD in {listed}; "
        "re-encode the input as UTF-8",
        InvalidUTF8Warning,
        stacklevel=3,
    )


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
        f"{_shorten(labels)}), so the training data has no example of it; fix or drop this "
        "line, or add examples of it to the training data"
    )


def _shorten(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOW else "")


def _build(
    rows: list[_Row],
    *,
    source: str,
    labels: Sequence[str] | None,
    multi_label: bool | None,
) -> LabeledDataset:
    def where(row: _Row) -> str:
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
