"""Reading text files: formats by suffix, compressed files, lines of any length, JSON lines.

The layer under :mod:`warmstart.corpus` (unlabeled documents) and
:mod:`warmstart.labeled_formats` (labeled examples). A file's format and compression come from
its name (:func:`split_suffixes`); :class:`LineReader` opens it (decompressing ``.gz``,
``.bz2`` and ``.xz``), refuses binary files, decodes UTF-8 (counting or refusing invalid
bytes) and yields its lines, either whole or, for lines too long to hold, in bounded blocks;
:func:`json_lines` parses the lines of a JSON Lines file into objects.

    >>> reader = LineReader()
    >>> for number, line in reader.lines(Path("train.jsonl.gz")):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from warmstart.errors import WarmstartError

#: Format of a file by its (lower-cased) suffix, once any compression suffix is removed.
FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
#: Compression by suffix; the opener returns a binary file object.
COMPRESSIONS: dict[str, Callable[..., Any]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}

_BINARY_PROBE = 8192  # bytes of the decompressed stream checked for a NUL byte
_READ_BLOCK = 1 << 20  # bytes read at a time: a whole line, unless it is longer than this
# Errors a damaged compressed stream (or a file that vanished mid-run) raises while reading.
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)

# Long documents (a whole book per CSV cell) must not trip the csv module's 128 KiB default.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def split_suffixes(path: Path) -> tuple[str | None, str | None]:
    """``(format or None, compression suffix or None)`` of a file by its name (:data:`FORMATS`,
    :data:`COMPRESSIONS`).

        >>> split_suffixes(Path("reviews.JSONL.gz"))
        ('jsonl', '.gz')
    """
    name = path.name.lower()
    compression = None
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            compression = ext
            name = name[: -len(ext)]
            break
    return FORMATS.get(os.path.splitext(name)[1]), compression


def open_binary(path: Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed as its suffix says."""
    compression = split_suffixes(path)[1]
    if compression is None:
        return open(path, "rb", buffering=1 << 20)
    return cast("IO[bytes]", COMPRESSIONS[compression](path, "rb"))


def listed(counts: dict[Path, int]) -> str:
    """``"a.txt (3), b.txt (1)"``: the first five files and their counts, for messages."""
    shown = ", ".join(f"{p} ({n})" for p, n in list(counts.items())[:5])
    if len(counts) > 5:
        shown += f" and {len(counts) - 5} more file(s)"
    return shown


def _utf8_tail(raw: bytes) -> int:
    """How many bytes at the end of ``raw`` start a UTF-8 character that continues after it."""
    for back in range(1, min(4, len(raw)) + 1):
        b = raw[-back]
        if b & 0xC0 != 0x80:  # not a continuation byte: the last character starts here
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            return back if need > back else 0
    return 0


class LineReader:
    """Reads the lines of text files, plain or compressed, as UTF-8.

    Invalid UTF-8 is replaced with U+FFFD and counted per file in :attr:`invalid_utf8` (the
    caller decides how to report it), or, with ``strict=True``, raises an error naming the
    file, line and byte. A binary file (NUL bytes near the start) or a corrupt compressed one
    raises :class:`~warmstart.errors.WarmstartError` naming the file. A byte-order mark at the
    start of a file is dropped.
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        #: Invalid UTF-8 sequences replaced so far, per file.
        self.invalid_utf8: dict[Path, int] = {}

    def lines(self, path: Path) -> Iterator[tuple[int, str]]:
        """``(line number, decoded line with its line ending)`` of ``path``, each line whole,
        however long: for formats whose records must be parsed whole (JSON Lines, CSV)."""
        parts: list[str] = []
        for lineno, text, ended in self.blocks(path):
            if ended and not parts:
                yield lineno, text
            elif ended:
                parts.append(text)
                yield lineno, "".join(parts)
                parts.clear()
            else:
                parts.append(text)

    def blocks(self, path: Path) -> Iterator[tuple[int, str, bool]]:
        """``(line number, text, line ends here)`` of ``path``, in bounded blocks.

        A line comes in one block with its line ending, unless it is longer than
        ``_READ_BLOCK`` bytes: then in several, the last one flagged as the end (at the end
        of the file, that block may be empty). A block never ends inside a UTF-8 character.
        """
        lineno = 0
        try:
            with open_binary(path) as f:
                if b"\0" in f.read(_BINARY_PROBE):
                    raise WarmstartError(
                        f"{path}: looks binary (NUL bytes near the start), not UTF-8 text; "
                        "remove it from the inputs (UTF-16 text must be converted to UTF-8)"
                    )
                f.seek(0)
                carry = b""  # the start of a character cut by the block size
                seen = -1  # bytes of the current line already decoded; -1 between lines
                while True:
                    raw = f.readline(_READ_BLOCK)
                    if not raw:
                        if seen >= 0:  # the file ends inside a long line
                            yield lineno, self._decode(path, lineno, carry, seen), True
                        return
                    if seen < 0:
                        lineno += 1
                        seen = 0
                    ended = raw.endswith(b"\n")
                    if carry:
                        raw, carry = carry + raw, b""
                    if not ended and (tail := _utf8_tail(raw)):
                        raw, carry = raw[:-tail], raw[-tail:]
                    text = self._decode(path, lineno, raw, seen)
                    if lineno == 1 and seen == 0 and text.startswith("\ufeff"):
                        text = text[1:]
                    seen = -1 if ended else seen + len(raw)
                    yield lineno, text, ended
        except _READ_ERRORS as e:
            where = f"after line {lineno}" if lineno else "at the start"
            compressed = split_suffixes(path)[1] is not None
            what = "corrupt or truncated compressed file" if compressed else "cannot read file"
            raise WarmstartError(f"{path}: {what} ({where}: {e}); re-create or remove it") from None

    def _decode(self, path: Path, lineno: int, raw: bytes, seen: int) -> str:
        """``raw`` as text; ``seen`` bytes of its line came before it (for error messages)."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if self.strict:
                raise WarmstartError(
                    f"{path}:{lineno}: invalid UTF-8 at byte {seen + e.start + 1} of the "
                    "line; re-encode the file as UTF-8, or drop --strict to replace "
                    "bad bytes with U+FFFD"
                ) from None
        text = raw.decode("utf-8", "replace")
        # "replace" puts one U+FFFD per invalid sequence; genuine U+FFFD characters in the
        # input are not counted.
        bad = self.invalid_utf8
        bad[path] = bad.get(path, 0) + text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
        return text


def json_object(path: Path, lineno: int, line: str) -> dict[str, Any]:
    """One line of a .jsonl file as a dict, or an error naming the file and line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise WarmstartError(
            f"{path}:{lineno}: invalid JSON ({e.msg.removesuffix(' at')}, column {e.colno}); each line "
            "of a .jsonl file must be one JSON object"
        ) from None
    if not isinstance(obj, dict):
        raise WarmstartError(
            f"{path}:{lineno}: expected a JSON object, found {type(obj).__name__}; "
            "each line of a .jsonl file must be one JSON object"
        )
    return obj


def json_lines(
    path: Path, lines: Iterable[tuple[int, str]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line of a JSON Lines file read as
    ``lines`` (:meth:`LineReader.lines`); a line that is not one JSON object is an error
    naming the file and line (:func:`json_object`)."""
    for lineno, line in lines:
        if line.strip():
            yield lineno, json_object(path, lineno, line)


def json_field(where: str, obj: dict[str, Any], key: str, *, hint: str) -> Any:
    """Field ``key`` of a JSON line's object, or an error naming ``where`` (file:line), the
    fields the object has, and ``hint`` (what to do)."""
    if key not in obj:
        fields = ", ".join(map(str, list(obj)[:20])) or "none"
        raise WarmstartError(f"{where}: no field {key!r} (fields: {fields}); {hint}")
    return obj[key]


def json_text(where: str, key: str, value: Any) -> str:
    """``value``, read from field ``key`` of a JSON line, if it is a string, else an error."""
    if not isinstance(value, str):
        raise WarmstartError(
            f"{where}: field {key!r} holds {type(value).__name__}, not a "
            "string; choose the text field with --text-field"
        )
    return value
