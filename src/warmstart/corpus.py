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

Memory is bounded by :data:`MAX_DOC_CHARS`, not by the longest line. A document longer than
that (a line of a text file with no line breaks in it: a dump, a book, a scraped page; or a
long JSONL field or CSV cell) is cut into consecutive documents of at most ``MAX_DOC_CHARS``
characters, each cut placed just after a whitespace character in the last tenth of the piece
(text without spaces, such as Chinese, is cut at the limit). No character is lost: the pieces
of a line, concatenated, are the line. Each pass over the corpus reports the lines it split
in one :class:`LongLineWarning`. Text files are read in bounded blocks
(:meth:`~warmstart.textfiles.LineReader.blocks`), so a line of any length is never held whole; a JSONL or CSV record must be parsed
whole, so it is held once, as it is read, and its text is cut before anything tokenizes it.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

from warmstart import artifact
from warmstart.errors import WarmstartError
from warmstart.textfiles import (
    COMPRESSIONS,
    FORMATS,
    LineReader,
    json_field,
    json_lines,
    json_object,
    json_text,
    listed,
    split_suffixes,
)

PathArg = Union[str, "os.PathLike[str]"]

#: The longest document a pass yields, in characters; longer ones are cut (see above). About
#: 20,000 words: far beyond a review, a post or an article, so normal corpora are read as
#: they are, and small enough that tokenizing one piece takes tens of MB, not gigabytes.
MAX_DOC_CHARS = 100_000

_LAST_SPACE = re.compile(r".*\s", re.DOTALL)  # a match ends just after its last whitespace
_GLOB_CHARS = frozenset("*?[")
class InvalidUTF8Warning(UserWarning):
    """Some bytes of the corpus were not valid UTF-8 and were replaced with U+FFFD."""


class LongLineWarning(UserWarning):
    """Some documents were longer than :data:`MAX_DOC_CHARS` and were cut into pieces."""


def _cut_point(text: str, start: int, max_chars: int) -> int:
    """Where the piece of ``text`` that begins at ``start`` ends, when at most ``max_chars``
    long: just after the last whitespace among its final tenth, else at the limit."""
    end = start + max_chars
    if end >= len(text):
        return len(text)
    m = _LAST_SPACE.match(text, end - max(1, max_chars // 10), end)
    return m.end() if m else end


def split_long(text: str, max_chars: int | None = None) -> Iterator[str]:
    """Cut ``text`` into consecutive pieces of at most ``max_chars`` characters
    (default :data:`MAX_DOC_CHARS`), at whitespace where there is some near the limit.

    A text within the limit is yielded as it is; ``"".join(split_long(text)) == text``.

        >>> list(split_long("one two three", 8))
        ['one two ', 'three']
    """
    limit = MAX_DOC_CHARS if max_chars is None else max_chars
    if len(text) <= limit:
        yield text
        return
    start = 0
    while start < len(text):
        end = _cut_point(text, start, limit)
        yield text[start:end]
        start = end


def text_batches(texts: Iterable[str], *, max_docs: int, max_chars: int) -> Iterator[list[str]]:
    """Lists of at most ``max_docs`` texts and about ``max_chars`` characters, for a
    tokenizer's batch calls, with each text longer than :data:`MAX_DOC_CHARS` cut by
    :func:`split_long` (a :class:`Corpus` already yields them cut). A batch stops at the
    first text that takes it to ``max_chars`` or more, so holds at least one text.
    """
    batch: list[str] = []
    n_chars = 0
    for text in texts:
        for piece in (text,) if len(text) <= MAX_DOC_CHARS else split_long(text):
            batch.append(piece)
            n_chars += len(piece)
            if len(batch) >= max_docs or n_chars >= max_chars:
                yield batch
                batch, n_chars = [], 0
    if batch:
        yield batch


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
            if split_suffixes(path)[0] is not None and path.is_file():
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


class Corpus:
    """A restartable iterable of documents (``str``) read from files, folders and globs.

    ``paths`` is one path or a sequence of them; each may be a file, a folder (read
    recursively: every file with a known suffix, hidden files skipped) or a glob pattern
    (``*``, ``?``, ``[...]``, ``**`` for any depth). Files are listed once, at construction,
    in argument order, each folder or pattern expanded in sorted order; a file named twice
    is read once.

    Every ``iter(corpus)`` re-opens the files, so several epochs never hold the corpus in
    memory, nor one long line of it: a document longer than :data:`MAX_DOC_CHARS` comes out
    as several, reported by one :class:`LongLineWarning` at the end of the pass. Invalid UTF-8 is replaced with U+FFFD and reported by one
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
        #: Lines (or JSONL/CSV texts) longer than MAX_DOC_CHARS cut during the last complete pass.
        self.n_split_lines = 0

        files: list[Path] = []
        seen: set[Path] = set()
        for arg in args:
            for path in _expand(arg):
                key = path.resolve()
                if key not in seen:
                    seen.add(key)
                    files.append(path)
        self.files: list[Path] = files

        # A column index: ASCII digits only (str.isdigit also takes "²", which int() refuses).
        if not has_header and not (self.text_field.isascii() and self.text_field.isdigit()):
            tabular = [f for f in files if split_suffixes(f)[0] in ("csv", "tsv")]
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

        The fingerprint (:func:`warmstart.artifact.file_fingerprint`) covers the sizes and
        contents of all files: it changes when any input file's content does, not when a file
        is only written again.
        """
        return {
            "paths": [os.path.abspath(os.path.expanduser(p)) for p in self.paths],
            "n_files": len(self.files),
            "fingerprint": artifact.file_fingerprint([str(f) for f in self.files]),
        }

    def __iter__(self) -> Iterator[str]:
        """Yield every document of every file, opening the files afresh."""
        n_docs = 0
        reader = LineReader(strict=self.strict)
        bad = reader.invalid_utf8
        split: dict[Path, int] = {}
        for path in self.files:
            fmt = split_suffixes(path)[0]
            if fmt == "jsonl":
                docs = self._bounded(path, self._jsonl(path, reader.lines(path)), split)
            elif fmt in ("csv", "tsv"):
                rows = (line for _, line in reader.lines(path))
                docs = self._bounded(path, self._table(path, rows, tsv=fmt == "tsv"), split)
            else:
                docs = self._txt(path, reader.blocks(path), split)
            for doc in docs:
                n_docs += 1
                yield doc

        self.n_invalid_utf8 = sum(bad.values())
        self.n_split_lines = sum(split.values())
        if bad:
            warnings.warn(
                f"replaced {self.n_invalid_utf8} invalid UTF-8 byte sequence(s) with U+FFFD "
                f"in {listed(bad)}; re-encode the input as UTF-8, or use --strict to stop at "
                "the first bad line",
                InvalidUTF8Warning,
                stacklevel=2,
            )
        if split:
            warnings.warn(
                f"split {self.n_split_lines} line(s) longer than {MAX_DOC_CHARS:,} characters "
                f"into documents of at most that many (cut at whitespace where there is some) "
                f"in {listed(split)}; end each document with a line break to choose the cuts",
                LongLineWarning,
                stacklevel=2,
            )
        if n_docs == 0:
            shown = ", ".join(self.paths[:5]) + (" ..." if len(self.paths) > 5 else "")
            raise WarmstartError(
                f"no text found in {shown} ({len(self.files)} file(s)): the files are empty "
                "or hold only blank documents; check the paths and --text-field"
            )

    def records(self) -> Iterator[tuple[Path, int, str]]:
        """Every record of every file, in order and whole, blank ones included (as ``""``):
        ``(file, number, text)``, the number being the line of a text or JSONL file and the
        row (after the header) of a CSV/TSV file. For outputs that must line up with their
        inputs, as ``warmstart predict``'s; training reads documents by iterating instead."""
        reader = LineReader(strict=self.strict)
        for path in self.files:
            fmt = split_suffixes(path)[0]
            lines = reader.lines(path)
            if fmt == "jsonl":
                for lineno, line in lines:
                    blank = not line or line.isspace()
                    yield path, lineno, "" if blank else self._jsonl_text(
                        path, lineno, json_object(path, lineno, line))
            elif fmt in ("csv", "tsv"):
                for number, text in self._rows(path, (line for _, line in lines), tsv=fmt == "tsv"):
                    yield path, number, text
            else:
                for lineno, line in lines:
                    yield path, lineno, line.rstrip("\r\n")

    @staticmethod
    def _txt(
        path: Path, blocks: Iterator[tuple[int, str, bool]], split: dict[Path, int]
    ) -> Iterator[str]:
        """One document per line, a line longer than ``MAX_DOC_CHARS`` cut as it streams in."""
        limit = MAX_DOC_CHARS
        buf = ""  # the part of a long line read but not yet yielded
        cut = False  # whether the current line has been cut
        for _, text, ended in blocks:
            if ended and not buf:  # the usual case: a whole line in one block
                doc = text.rstrip("\r\n")
                if len(doc) <= limit:
                    if doc and not doc.isspace():
                        yield doc
                    continue
                buf = doc
            else:
                buf = buf + text
                if ended:
                    buf = buf.rstrip("\r\n")
            # Pieces are sliced from buf and buf is cut once per block, not once per piece.
            start = 0
            while len(buf) - start > limit:
                end = _cut_point(buf, start, limit)
                piece = buf[start:end]
                start, cut = end, True
                if not piece.isspace():
                    yield piece
            buf = buf[start:]
            if ended:
                if buf and not buf.isspace():
                    yield buf
                if cut:
                    split[path] = split.get(path, 0) + 1
                buf, cut = "", False

    @staticmethod
    def _bounded(path: Path, docs: Iterator[str], split: dict[Path, int]) -> Iterator[str]:
        """``docs`` with each one longer than ``MAX_DOC_CHARS`` cut into pieces."""
        for doc in docs:
            if len(doc) <= MAX_DOC_CHARS:
                yield doc
                continue
            split[path] = split.get(path, 0) + 1
            for piece in split_long(doc):
                if not piece.isspace():
                    yield piece

    def _jsonl(self, path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[str]:
        for lineno, obj in json_lines(path, lines):
            doc = self._jsonl_text(path, lineno, obj)
            if doc and not doc.isspace():
                yield doc

    def _jsonl_text(self, path: Path, lineno: int, obj: dict[str, Any]) -> str:
        """The text field of one JSONL object, or an error naming the file, line and field."""
        where = f"{path}:{lineno}"
        doc = json_field(where, obj, self.text_field,
                         hint="choose the text field with --text-field")
        return json_text(where, self.text_field, doc)

    def _table(self, path: Path, lines: Iterator[str], *, tsv: bool) -> Iterator[str]:
        for _, doc in self._rows(path, lines, tsv=tsv):
            if doc and not doc.isspace():
                yield doc

    def _rows(self, path: Path, lines: Iterator[str], *, tsv: bool) -> Iterator[tuple[int, str]]:
        """``(row number, text cell)`` of a CSV/TSV file, rows counted after any header and
        blank lines included (as empty texts)."""
        dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
        reader = csv.reader(lines, **dialect)
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
            for number, row in enumerate(reader, start=1):
                if not row:  # a blank line
                    yield number, ""
                    continue
                if len(row) <= col:
                    raise WarmstartError(
                        f"{path}:{reader.line_num}: row has {len(row)} column(s), but the "
                        f"text is in column {col} (0-based, --text-field {field!r}); fix the "
                        "row or choose another column"
                    )
                yield number, row[col]
        except csv.Error as e:
            raise WarmstartError(
                f"{path}:{reader.line_num}: malformed {'TSV' if tsv else 'CSV'} ({e})"
            ) from None
