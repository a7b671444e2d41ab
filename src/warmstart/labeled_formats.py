"""The labeled-data formats: each read into examples (text, label names, where it was).

:meth:`LabeledDataset.read <warmstart.labeled.LabeledDataset.read>` reads a file or folder
with :func:`read_examples`. Formats, chosen by suffix (optionally followed by ``.gz``,
``.bz2`` or ``.xz``) or by ``format=``:

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

Files are read by :class:`~warmstart.textfiles.LineReader` (compressed or not, lines of any
length), JSON lines by :func:`~warmstart.textfiles.json_lines`, as the corpus reads them.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from warmstart.config import option_name
from warmstart.corpus import InvalidUTF8Warning
from warmstart.errors import WarmstartError
from warmstart.textfiles import (
    COMPRESSIONS,
    LineReader,
    json_field,
    json_lines,
    json_text,
    listed,
    split_suffixes,
)

#: Formats ``LabeledDataset.read(format=...)`` accepts.
LABELED_FORMATS = ("csv", "tsv", "jsonl", "fasttext", "folder")
#: Format by suffix (after any compression suffix), where it differs from warmstart.textfiles.
_FT_SUFFIXES = {".ft": "fasttext", ".fasttext": "fasttext"}
#: Column names tried, in this order of preference, when the default column is absent.
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "class", "category")
# Sub-folders of unlabeled texts in the folder layout (IMDB's train/unsup): not a class.
UNLABELED_FOLDERS = ("unsup", "unlabeled", "unlabelled")
#: Labels or columns listed in a message before "...".
N_SHOWN = 12

_FT_PREFIX = "__label__"
_FT_LABELS = re.compile(r"\s*((?:__label__\S*(?:\s+|$))+)(.*)", re.DOTALL)
# A column index: ASCII digits only (str.isdigit also takes "²" and "①", which int() refuses).
_INDEX = re.compile(r"[0-9]+")

#: One example as read: (line number or 0, file or None, text, label names).
Example = tuple[int, str | None, str, list[str]]


def read_examples(
    p: Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    has_header: bool = True,
    label_sep: str | None = None,
    format: str | None = None,
) -> list[Example]:
    """The examples of labeled file or class-per-folder tree ``p``, in file order.

    The options are :meth:`LabeledDataset.read <warmstart.labeled.LabeledDataset.read>`'s.
    Invalid UTF-8 is replaced and reported in one :class:`~warmstart.corpus.InvalidUTF8Warning`;
    user mistakes raise :class:`~warmstart.errors.WarmstartError` naming the file and line.
    """
    if format is not None and format not in LABELED_FORMATS:
        raise WarmstartError(
            f"{p}: unknown format {format!r}; choose one of {', '.join(LABELED_FORMATS)}"
        )
    if not p.exists():
        raise WarmstartError(f"{p}: no such file or folder; check the path")
    reader = LineReader()
    if p.is_dir():
        if format not in (None, "folder"):
            raise WarmstartError(
                f"{p}: is a folder, but format={format!r} names a file format; name a "
                "file, or drop format= to read the folder as one sub-folder per class"
            )
        rows = _read_folder(p, reader)
    else:
        if format == "folder":
            raise WarmstartError(
                f"{p}: format='folder' needs a folder with one sub-folder per class; "
                "this is a file"
            )
        lines = reader.lines(p)
        fmt = format or _format_of(p)
        if fmt is None:  # a .txt file (or no known suffix): fastText if it looks like it
            lines, fmt = _sniff_fasttext(p, lines)
        found: Iterator[Example]
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
    _warn_invalid_utf8(reader.invalid_utf8)
    if not rows:
        raise WarmstartError(
            f"{p}: no labeled examples found (the file or folder is empty); check the path"
        )
    return rows


def _format_of(path: Path) -> str | None:
    """``csv``, ``tsv``, ``jsonl`` or ``fasttext`` by suffix; None for ``.txt`` and unknown."""
    fmt, compression = split_suffixes(path)
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


def _read_fasttext(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[Example]:
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
) -> Iterator[Example]:
    text_key: str | None = None
    label_key: str | None = None
    for lineno, obj in json_lines(path, lines):
        where = f"{path}:{lineno}"
        if text_key is None or label_key is None:
            keys = [str(k) for k in obj]
            text_key = keys[_pick_column(keys, text_field, "text", TEXT_COLUMNS, where, "field")]
            label_key = keys[
                _pick_column(keys, label_field, "label", LABEL_COLUMNS, where, "field")
            ]
        hint = "every line needs the text and label fields (--text-field, --label-field)"
        value, label = (json_field(where, obj, key, hint=hint) for key in (text_key, label_key))
        text = json_text(where, text_key, value)
        if not text.strip():
            raise WarmstartError(
                f"{where}: empty text in field {text_key!r}; add the text or drop the line"
            )
        yield lineno, None, text, _json_labels(label, label_sep, where, label_key)


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
) -> Iterator[Example]:
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
                        f"indexes, but {option} ({option_name(option)}) is {value!r}; "
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
    shown = shorten([n[:40] + ("..." if len(n) > 40 else "") for n in names])
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


def _read_folder(root: Path, reader: LineReader) -> list[Example]:
    classes = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    skipped = [d for d in classes if d.name.lower() in UNLABELED_FOLDERS]
    for d in skipped:
        warnings.warn(f"{d}: skipped: a folder named {d.name!r} holds unlabeled texts, not a "
                      "class (use it as a pretraining corpus)", stacklevel=5)
    classes = [d for d in classes if d not in skipped]
    if not classes:
        raise WarmstartError(
            f"{root}: folder has no class sub-folders; a labeled folder holds one sub-folder "
            "per class with one .txt file per document (e.g. train/pos/*.txt, train/neg/*.txt)"
        )
    rows: list[Example] = []
    for folder in classes:
        files = sorted(
            f for f in folder.iterdir()
            if not f.name.startswith(".") and split_suffixes(f)[0] == "txt" and f.is_file()
        )
        if not files:
            raise WarmstartError(
                f"{folder}: class folder holds no .txt files; put one document per .txt file "
                "in it, or move the folder out of the dataset"
            )
        for f in files:
            text = "".join(line for _, line in reader.lines(f))
            text = text.strip()
            if not text:
                raise WarmstartError(f"{f}: empty document; add the text or remove the file")
            rows.append((0, str(f), text, [folder.name]))
    return rows


def _warn_invalid_utf8(bad: dict[Path, int]) -> None:
    if not bad:
        return
    warnings.warn(
        f"replaced {sum(bad.values())} invalid UTF-8 byte sequence(s) with U+FFFD in "
        f"{listed(bad)}; re-encode the input as UTF-8",
        InvalidUTF8Warning,
        stacklevel=4,
    )


def shorten(items: Sequence[str]) -> str:
    """The first :data:`N_SHOWN` of ``items``, comma-separated, and how many in all if more."""
    shown = ", ".join(items[:N_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > N_SHOWN else "")

