"""A restartable stream of documents read from text files.

:class:`Corpus` turns files, folders and glob patterns into an iterable of documents (one
``str`` each). Like gensim's ``LineSentence`` it re-opens its files on every ``iter()``, so a
trainer can make several passes over a corpus larger than memory.

    >>> corpus = Corpus(["reviews/", "extra/*.jsonl.gz"], text_field="body")  # doctest: +SKIP
    >>> for doc in corpus:                                                     # doctest: +SKIP
    ...     ...

Formats, chosen by suffix (optionally followed by ``.gz``, ``.bz2`` or ``.xz``):

* ``.txt`` (and any other suffix when the file is named explicitly): one document per line;
  blank lines are skipped.
* ``.jsonl`` / ``.ndjson``: one JSON object per line; the document is its ``text_field``.
* ``.csv`` / ``.tsv``: the column named ``text_field`` in the header, or the column at index
  ``text_field`` (``"0"``, ``"1"``, ...) when ``has_header=False``. TSV is read without quote
  processing (``csv.QUOTE_NONE``), as IMDB-style TSVs need.

Documents that are empty or all whitespace are skipped in every format.
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import json
import lzma
import os
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Union, cast

from warmstart import artifact
from warmstart.errors import WarmstartError

PathArg = Union[str, "os.PathLike[str]"]

#: Format of a file by its (lower-cased) suffix, once any compression suffix is removed.
FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
#: Compression by suffix; the opener returns a binary file object.
COMPRESSIONS: dict[str, Callable[..., Any]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}

_BINARY_PROBE = 8192  # bytes of the decompressed stream checked for a NUL byte
_GLOB_CHARS = frozenset("*?[")
# Errors a damaged compressed stream (or a file that vanished mid-run) raises while reading.
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)

# Long documents (a whole book per CSV cell) must not trip the csv module's 128 KiB default.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class InvalidUTF8Warning(UserWarning):
    """Some bytes of the corpus were not valid UTF-8 and were replaced with U+FFFD."""


def _split_suffixes(path: Path) -> tuple[str | None, str | None]:
    """Return ``(format or None, compression suffix or None)`` for a file name."""
    name = path.name.lower()
    compression = None
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            compression = ext
            name = name[: -len(ext)]
            break
    return FORMATS.get(os.path.splitext(name)[1]), compression


def _is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def _walk(folder: Path) -> list[Path]:
    """All files under ``folder`` with a known suffix, sorted; hidden files and folders skipped."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root, name)
            if _split_suffixes(path)[0] is not None and path.is_file():
                found.append(path)
    return found


def _expand(arg: PathArg) -> list[Path]:
    """The files one ``paths`` entry stands for; raises if it stands for none."""
    text = os.path.expanduser(os.fspath(arg))
    # A real file whose name contains "[" is taken literally, not as a pattern.
    if _is_glob(text) and not os.path.exists(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise WarmstartError(
                f"{text}: no files match this pattern; check the path "
                "(and quote the pattern so that your shell does not expand it)"
            )
        files: list[Path] = []
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files.extend(_walk(path))
            elif path.is_file():
                files.append(path)
        if not files:
            raise WarmstartError(
                f"{text}: the pattern matches only folders without text files "
                f"(known suffixes: {_known_suffixes()})"
            )
        return files
    path = Path(text)
    if not path.exists():
        raise WarmstartError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        files = _walk(path)
        if not files:
            raise WarmstartError(
                f"{path}: folder has no readable text files (known suffixes: "
                f"{_known_suffixes()}); name other files explicitly or with a pattern"
            )
        return files
    return [path]


def _known_suffixes() -> str:
    return ", ".join(FORMATS) + " (each optionally + " + "/".join(COMPRESSIONS) + ")"


def json_object(path: Path, lineno: int, line: str) -> dict[str, Any]:
    """One line of a .jsonl file as a dict, or an error naming the file and line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise WarmstartError(
            f"{path}:{lineno}: invalid JSON ({e.msg}, column {e.colno}); each line "
            "of a .jsonl file must be one JSON object"
        ) from None
    if not isinstance(obj, dict):
        raise WarmstartError(
            f"{path}:{lineno}: expected a JSON object, found {type(obj).__name__}; "
            "each line of a .jsonl file must be one JSON object"
        )
    return obj


class Corpus:
    """A restartable iterable of documents (``str``) read from files, folders and globs.

    ``paths`` is one path or a sequence of them; each may be a file, a folder (read
    recursively: every file with a known suffix, hidden files skipped) or a glob pattern
    (``*``, ``?``, ``[...]``, ``**`` for any depth). Files are listed once, at construction,
    in argument order, each folder or pattern expanded in sorted order; a file named twice
    is read once.

    Every ``iter(corpus)`` re-opens the files, so several epochs never hold the corpus in
    memory. Invalid UTF-8 is replaced with U+FFFD and reported by one
    :class:`InvalidUTF8Warning` at the end of a pass (``strict=True`` raises instead).
    Input mistakes (missing path, missing column, bad JSON line, binary or corrupt file, no
    text at all) raise :class:`~warmstart.errors.WarmstartError` naming the file and line.

        >>> docs = Corpus("data/en/tiny/lee_background.cor")   # doctest: +SKIP
        >>> sum(1 for _ in docs)                                # doctest: +SKIP
        300
    """

    def __init__(
        self,
        paths: PathArg | Sequence[PathArg],
        *,
        text_field: str = "text",
        has_header: bool = True,
        strict: bool = False,
    ) -> None:
        args = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not args:
            raise WarmstartError("no input paths given; name at least one file, folder or pattern")
        self.paths: list[str] = [os.fspath(p) for p in args]
        self.text_field = str(text_field)
        self.has_header = has_header
        self.strict = strict
        #: Invalid UTF-8 sequences replaced during the last complete pass.
        self.n_invalid_utf8 = 0

        files: list[Path] = []
        seen: set[Path] = set()
        for arg in args:
            for path in _expand(arg):
                key = path.resolve()
                if key not in seen:
                    seen.add(key)
                    files.append(path)
        self.files: list[Path] = files

        if not has_header and not self.text_field.isdigit():
            tabular = [f for f in files if _split_suffixes(f)[0] in ("csv", "tsv")]
            if tabular:
                raise WarmstartError(
                    f"{tabular[0]}: without a header row (has_header=False) the text column "
                    f"must be a 0-based column index, but text_field (--text-field) is "
                    f"{self.text_field!r}; pass e.g. --text-field 0"
                )

    def __repr__(self) -> str:
        return f"Corpus({self.paths!r}, n_files={len(self.files)})"

    def describe(self) -> dict[str, Any]:
        """Provenance for an artifact's ``data`` field: the paths as given and a fingerprint.

        The fingerprint (:func:`warmstart.artifact.file_fingerprint`) covers the names, sizes
        and modification times of all files, so it changes when any input file does.
        """
        return {
            "paths": [os.path.abspath(os.path.expanduser(p)) for p in self.paths],
            "n_files": len(self.files),
            "fingerprint": artifact.file_fingerprint([str(f) for f in self.files]),
        }

    def __iter__(self) -> Iterator[str]:
        """Yield every document of every file, opening the files afresh."""
        n_docs = 0
        bad: dict[Path, int] = {}
        for path in self.files:
            fmt, compression = _split_suffixes(path)
            lines = self._lines(path, compression, bad)
            if fmt == "jsonl":
                docs = self._jsonl(path, lines)
            elif fmt in ("csv", "tsv"):
                docs = self._table(path, lines, tsv=fmt == "tsv")
            else:
                docs = self._txt(lines)
            for doc in docs:
                n_docs += 1
                yield doc

        self.n_invalid_utf8 = sum(bad.values())
        if bad:
            listed = ", ".join(f"{p} ({n})" for p, n in list(bad.items())[:5])
            if len(bad) > 5:
                listed += f" and {len(bad) - 5} more file(s)"
            warnings.warn(
                f"replaced {self.n_invalid_utf8} invalid UTF-8 byte sequence(s) with U+FFFD "
                f"in {listed}; re-encode the input as UTF-8, or use --strict to stop at the "
                "first bad line",
                InvalidUTF8Warning,
                stacklevel=2,
            )
        if n_docs == 0:
            shown = ", ".join(self.paths[:5]) + (" ..." if len(self.paths) > 5 else "")
            raise WarmstartError(
                f"no text found in {shown} ({len(self.files)} file(s)): the files are empty "
                "or hold only blank documents; check the paths and --text-field"
            )

    # -- reading ---------------------------------------------------------------------------

    def _open(self, path: Path, compression: str | None) -> IO[bytes]:
        if compression is None:
            return open(path, "rb", buffering=1 << 20)
        return cast("IO[bytes]", COMPRESSIONS[compression](path, "rb"))

    def _lines(
        self, path: Path, compression: str | None, bad: dict[Path, int]
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(line number, decoded line with its line ending)`` for one file."""
        lineno = 0
        try:
            with self._open(path, compression) as f:
                if b"\0" in f.read(_BINARY_PROBE):
                    raise WarmstartError(
                        f"{path}: looks binary (NUL bytes near the start), not UTF-8 text; "
                        "remove it from the inputs (UTF-16 text must be converted to UTF-8)"
                    )
                f.seek(0)
                for raw in f:
                    lineno += 1
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        if self.strict:
                            raise WarmstartError(
                                f"{path}:{lineno}: invalid UTF-8 at byte {e.start + 1} of the "
                                "line; re-encode the file as UTF-8, or drop --strict to replace "
                                "bad bytes with U+FFFD"
                            ) from None
                        line = raw.decode("utf-8", "replace")
                        # "replace" puts one U+FFFD per invalid sequence; genuine U+FFFD
                        # characters in the input are not counted.
                        n = line.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
                        bad[path] = bad.get(path, 0) + n
                    if lineno == 1 and line.startswith("\ufeff"):
                        line = line[1:]
                    yield lineno, line
        except _READ_ERRORS as e:
            where = f"after line {lineno}" if lineno else "at the start"
            what = "corrupt or truncated compressed file" if compression else "cannot read file"
            raise WarmstartError(f"{path}: {what} ({where}: {e}); re-create or remove it") from None

    @staticmethod
    def _txt(lines: Iterator[tuple[int, str]]) -> Iterator[str]:
        for _, line in lines:
            doc = line.rstrip("\r\n")
            if doc and not doc.isspace():
                yield doc

    def _jsonl(self, path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[str]:
        field = self.text_field
        for lineno, line in lines:
            if not line or line.isspace():
                continue
            obj = json_object(path, lineno, line)
            if field not in obj:
                keys = ", ".join(map(str, list(obj)[:20])) or "none"
                raise WarmstartError(
                    f"{path}:{lineno}: no field {field!r} (fields: {keys}); "
                    "choose the text field with --text-field"
                )
            doc = obj[field]
            if not isinstance(doc, str):
                raise WarmstartError(
                    f"{path}:{lineno}: field {field!r} holds {type(doc).__name__}, not a "
                    "string; choose the text field with --text-field"
                )
            if doc and not doc.isspace():
                yield doc

    def _table(self, path: Path, lines: Iterator[tuple[int, str]], *, tsv: bool) -> Iterator[str]:
        dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
        reader = csv.reader((line for _, line in lines), **dialect)
        field = self.text_field
        try:
            if self.has_header:
                header = next(reader, None)
                if header is None:
                    return
                names = [name.strip() for name in header]
                if field not in names:
                    raise WarmstartError(
                        f"{path}:1: no column {field!r} in the header (columns: "
                        f"{', '.join(names)}); choose one with --text-field, or use "
                        "has_header=False (--no-header) and a column index if the file has "
                        "no header row"
                    )
                col = names.index(field)
            else:
                col = int(field)
            for row in reader:
                if not row:  # a blank line
                    continue
                if len(row) <= col:
                    raise WarmstartError(
                        f"{path}:{reader.line_num}: row has {len(row)} column(s), but the "
                        f"text is in column {col} (0-based, --text-field {field!r}); fix the "
                        "row or choose another column"
                    )
                doc = row[col]
                if doc and not doc.isspace():
                    yield doc
        except csv.Error as e:
            raise WarmstartError(
                f"{path}:{reader.line_num}: malformed {'TSV' if tsv else 'CSV'} ({e})"
            ) from None
