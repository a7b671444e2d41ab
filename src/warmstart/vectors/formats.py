"""The word2vec text and binary formats, for exchange with other tools.

Both start with a text header ``"<n words> <dim>\\n"``. The text format then has one line per
word, ``word v1 v2 ... vdim``; the binary format has, per word, the UTF-8 word, a space and
``dim`` little-endian float32 values (the C tool writes a newline after each vector, gensim does
not; both are read). Files ending in ``.gz`` or ``.bz2`` are compressed on writing, and
compressed files are recognised by content on reading.

Text files are written with ``%.9g`` (9 significant digits), which is enough for every float32
to come back bit for bit, here and in gensim. Both directions run in the compiled kernels
library, so a 100,000 x 100 text file is written or read in about a second.

    >>> save_word2vec(kv, "vectors.txt")                 # doctest: +SKIP
    >>> kv2 = load_word2vec("GoogleNews.bin.gz")         # doctest: +SKIP

:func:`import_vectors` and :func:`export_vectors` are the ``warmstart vectors import`` and
``vectors export`` commands: a word2vec file to a vectors artifact, and back.

    >>> import_vectors("GoogleNews.bin.gz", out="news", limit=100_000)   # doctest: +SKIP
    >>> export_vectors("news", format="word2vec-binary")                  # doctest: +SKIP
    {'out': 'news/vectors.bin', 'vectors': 100000, 'dim': 300}
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from warmstart.artifact import atomic_file, read_meta
from warmstart.errors import WarmstartError
from warmstart.vectors.kernels import format_rows, parse_lines
from warmstart.vectors.keyed import KeyedVectors

# Bytes read, and rows written, per step: memory beyond the matrix itself stays bounded.
_CHUNK = 16 << 20
_WRITE_ROWS = 10000
# Characters that end a word in one reader or another (C word2vec splits on space, tab, newline).
_FORBIDDEN = (" ", "\t", "\n", "\r")
#: Values of :func:`export_vectors`'s ``format`` (the CLI's ``vectors export --format``).
EXPORT_FORMATS = ("word2vec", "word2vec-binary")


def import_vectors(
    path: str | os.PathLike[str], *, out: str | os.PathLike[str], limit: int | None = None
) -> KeyedVectors:
    """Make a vectors artifact at ``out`` from the word2vec text or binary file ``path``
    (``warmstart vectors import``); ``limit`` keeps only its first N vectors. Returns them."""
    kv = load_word2vec(path, limit=limit)
    kv.save(out, config={"imported_from": str(path)}, data={"paths": [str(Path(path).resolve())]})
    return kv


def export_vectors(
    model: KeyedVectors | str | os.PathLike[str],
    *,
    format: str = "word2vec",
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write the vectors of ``model`` (see :func:`load_vectors`) in the word2vec text format,
    or with ``format="word2vec-binary"`` the binary one (``warmstart vectors export``).

    ``out`` is the file to write; by default ``vectors.txt`` (or ``vectors.bin``) inside the
    artifact folder ``model``. Returns what was written: ``out``, the number of ``vectors``
    and their ``dim``.
    """
    if format not in EXPORT_FORMATS:
        raise WarmstartError(f"--format {format}: use one of {', '.join(EXPORT_FORMATS)}")
    binary = format == "word2vec-binary"
    if not out:
        if isinstance(model, KeyedVectors):
            raise WarmstartError("export_vectors: give out, the file to write, for vectors "
                                 "that are not read from an artifact folder")
        out = Path(model) / ("vectors.bin" if binary else "vectors.txt")
    kv = load_vectors(model)
    save_word2vec(kv, out, binary=binary)
    return {"out": str(out), "vectors": len(kv), "dim": kv.dim}


def save_word2vec(kv: KeyedVectors, path: str | os.PathLike[str], *, binary: bool = False) -> None:
    """Write ``kv`` in word2vec text (or ``binary``) format, atomically.

    The words keep their order (most frequent first). A ``.gz``/``.bz2`` suffix compresses.
    Words containing whitespace, or empty words, cannot be represented: WarmstartError.
    """
    path = Path(path)
    if kv.dim < 1:
        raise WarmstartError(
            f"{path}: the vectors have dimension {kv.dim}, which no word2vec reader takes; "
            "export vectors of dimension 1 or more"
        )
    joined = "".join(kv.words)
    if any(ch in joined for ch in _FORBIDDEN) or not all(kv.words):
        i, w = next((i, w) for i, w in enumerate(kv.words) if not w or set(w) & set(_FORBIDDEN))
        raise WarmstartError(
            f"{path}: word #{i} {w!r} is empty or contains whitespace, which the word2vec "
            "format cannot represent; fix the tokenizer or export to a warmstart artifact"
        )
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        i, w = next((i, w) for i, w in enumerate(kv.words) if not _encodable(w))
        raise WarmstartError(
            f"{path}: word #{i} {w!r} holds a lone surrogate, which UTF-8 cannot encode; "
            "fix the vocabulary or export to a warmstart artifact"
        ) from None
    if not path.parent.is_dir():
        raise WarmstartError(f"{path}: folder {path.parent} does not exist")
    with atomic_file(path) as raw, _compressor(raw, path) as out:
        out.write(f"{len(kv)} {kv.dim}\n".encode())
        if binary:
            _write_binary(out, kv)
        else:
            _write_text(out, kv)


def _encodable(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _compressor(
    raw: BinaryIO, path: Path
) -> contextlib.AbstractContextManager[io.BufferedIOBase]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0)
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw, mode="wb")
    return contextlib.nullcontext(cast(io.BufferedIOBase, raw))


def _write_text(out: io.BufferedIOBase, kv: KeyedVectors) -> None:
    for start in range(0, len(kv), _WRITE_ROWS):
        encoded = [w.encode("utf-8") for w in kv.words[start : start + _WRITE_ROWS]]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        out.write(format_rows(b"".join(encoded), offsets, kv.vectors[start : start + _WRITE_ROWS]))


def _write_binary(out: io.BufferedIOBase, kv: KeyedVectors) -> None:
    for start in range(0, len(kv), _WRITE_ROWS):
        block = np.ascontiguousarray(kv.vectors[start : start + _WRITE_ROWS], dtype="<f4")
        words = kv.words[start : start + _WRITE_ROWS]
        out.write(
            b"".join(
                w.encode("utf-8") + b" " + row.tobytes() + b"\n"
                for w, row in zip(words, block, strict=True)
            )
        )


def load_word2vec(
    path: str | os.PathLike[str], *, binary: bool | None = None, limit: int | None = None
) -> KeyedVectors:
    """Read a word2vec text or binary file (``binary=None``: detect), keeping its word order.

    ``limit`` keeps only the first N words. Words are decoded as UTF-8, replacing invalid
    bytes (the C tool can cut a multi-byte character). A word seen twice keeps its first
    vector, with a warning. Errors name the file and the line (text) or entry (binary).
    """
    path = Path(path)
    if not path.is_file():
        raise WarmstartError(f"{path}: no such file")
    if limit is not None and limit < 0:
        raise WarmstartError(f"limit: must be at least 0, got {limit}")
    try:
        with _open_maybe_compressed(path) as f:
            n, dim = _read_header(f, path)
            size = path.stat().st_size
            if isinstance(f, io.BufferedReader) and n * (2 * dim + 2) > size:  # uncompressed
                raise WarmstartError(
                    f"{path}, line 1: the header promises {n} words of dimension {dim}, more "
                    f"than a {size}-byte file can hold; the file is truncated or the header is wrong"
                )
            if limit is not None:
                n = min(n, limit)
            first = f.read(_CHUNK)
            if binary is None:
                binary = not _looks_like_text(first, dim)
            if binary:
                words, vectors = _read_binary(f, first, path, n, dim)
            else:
                words, vectors = _read_text(f, first, path, n, dim)
    except (OSError, EOFError, zlib.error) as e:
        raise WarmstartError(f"{path}: cannot read the file ({e})") from None
    return _dedupe(words, vectors, path)


def _open_maybe_compressed(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"BZh":
        return bz2.open(path, "rb")
    return open(path, "rb")


def _read_header(f: io.BufferedIOBase, path: Path) -> tuple[int, int]:
    line = f.readline(1024)
    try:
        n_str, dim_str = line.decode("ascii").split()
        n, dim = int(n_str), int(dim_str)
        if n < 0 or dim < 1:
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise WarmstartError(
            f"{path}, line 1: bad header {line[:60]!r}; a word2vec file starts with "
            "'<number of words> <dimension>'"
        ) from None
    return n, dim


def _looks_like_text(buf: bytes, dim: int) -> bool:
    """Whether the first entry after the header is a text line of a word and ``dim`` numbers.

    The line is split as the text reader splits it: the word ends at the first space (so it
    may hold any other character, Unicode spaces and line separators included), and the
    numbers are separated by spaces or tabs.
    """
    end = buf.find(b"\n")
    line = buf if end < 0 else buf[:end]
    if not line.strip():
        return True  # nothing (or an empty line) follows the header: let the text reader report it
    numbers = line.rstrip(b" \t\r").partition(b" ")[2].replace(b"\t", b" ").split(b" ")
    numbers = [x for x in numbers if x]
    if len(numbers) != dim:
        return False
    try:
        np.array([x.decode("ascii") for x in numbers], dtype=np.float32)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _allocate(path: Path, n: int, dim: int) -> np.ndarray:
    """The (n, dim) matrix a header promises; an impossible one is the header's fault.

    Only the pages written are backed by memory, so a large promise costs nothing until it
    is kept; one beyond what the machine can map at all (a compressed file's size cannot
    rule it out beforehand) fails here.
    """
    try:
        return np.empty((n, dim), np.float32)
    except (MemoryError, ValueError):
        raise WarmstartError(
            f"{path}, line 1: the header promises {n} words of dimension {dim} "
            f"({4 * n * dim / 2**30:,.0f} GiB of vectors), more than this machine can hold; "
            "the file is truncated or the header is wrong"
        ) from None


def _read_text(
    f: io.BufferedIOBase, buf: bytes, path: Path, n: int, dim: int
) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    vectors = _allocate(path, n, dim)
    eof = False
    while len(words) < n:
        cut = len(buf) if eof else buf.rfind(b"\n") + 1
        if cut == 0 and not eof:  # no complete line yet
            more = f.read(_CHUNK)
            eof = not more
            buf += more
            continue
        done = len(words)
        rows = min(n - done, buf.count(b"\n", 0, cut) + 1)
        k, spans, status = parse_lines(buf[:cut], dim, vectors[done : done + rows])
        for ws, we, _ in spans[:k].tolist():
            words.append(buf[ws:we].decode("utf-8", errors="replace"))
        for i in np.flatnonzero(status[:k]).tolist():  # lines the fast parser left to numpy
            _, we, end = spans[i].tolist()
            vectors[done + i] = _parse_slow(buf[we:end], path, done + i + 2, dim)
        if eof:
            if len(words) < n:
                raise WarmstartError(
                    f"{path}, line {len(words) + 1}: the file ends here, after {len(words)} of "
                    f"the {n} words its header promises; the file is truncated or the header "
                    "is wrong"
                )
            break
        if len(words) < n:
            more = f.read(_CHUNK)
            eof = not more
            buf = buf[cut:] + more
    return words, vectors


def _parse_slow(rest: bytes, path: Path, line: int, dim: int) -> np.ndarray:
    """The numbers of one line by numpy's parser, or an error naming the line."""
    fields = rest.split()
    if len(fields) != dim:
        raise WarmstartError(
            f"{path}, line {line}: expected a word and {dim} numbers, found {len(fields)} numbers"
        )
    try:
        return np.array(fields, dtype=np.float32)
    except ValueError:
        bad = next(x for x in fields if not _is_number(x))
        raise WarmstartError(f"{path}, line {line}: {bad[:40]!r} is not a number") from None


def _is_number(x: bytes) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True


def _read_binary(
    f: io.BufferedIOBase, buf: bytes, path: Path, n: int, dim: int
) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    vectors = _allocate(path, n, dim)
    nbytes = 4 * dim
    pos = 0
    eof = False
    while len(words) < n:
        # gensim writes no newline after a vector, the C tool does: skip one if present.
        while pos < len(buf) and buf[pos] == 0x0A:
            pos += 1
        space = buf.find(b" ", pos)
        if space < 0 or len(buf) - space - 1 < nbytes:
            if eof:
                raise WarmstartError(
                    f"{path}: binary file ends inside entry {len(words) + 1} of the {n} its "
                    "header promises; the file is truncated or the header is wrong"
                )
            more = f.read(_CHUNK)
            eof = not more
            buf = buf[pos:] + more
            pos = 0
            continue
        words.append(buf[pos:space].decode("utf-8", errors="replace"))
        vectors[len(words) - 1] = np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + nbytes
    return words, vectors


def _dedupe(words: list[str], vectors: np.ndarray, path: Path) -> KeyedVectors:
    seen: dict[str, int] = {}
    keep = [i for i, w in enumerate(words) if seen.setdefault(w, i) == i]
    if len(keep) < len(words):
        warnings.warn(
            f"{path}: {len(words) - len(keep)} duplicate words (after UTF-8 decoding); "
            "kept the first vector of each",
            stacklevel=3,
        )
        words = [words[i] for i in keep]
        vectors = vectors[keep]
    return KeyedVectors(words, vectors)


def load_vectors(model: KeyedVectors | str | os.PathLike[str], *, option: str = "",
                 mmap: bool = False) -> KeyedVectors:
    """The word vectors ``model`` names: a vectors artifact folder, or a word2vec text or
    binary file; vectors already loaded are returned as they are.

    ``mmap``: an artifact's tensors are memory-mapped (see :meth:`KeyedVectors.load`).
    A missing path is a :class:`~warmstart.errors.WarmstartError` that starts with
    ``option`` (e.g. ``--vectors``) when the path came from one.
    """
    if isinstance(model, KeyedVectors):
        return model
    p = Path(model)
    if not p.exists():
        raise WarmstartError(f"{option + ' ' if option else ''}{p}: no such folder or file; give "
                             "a vectors artifact (warmstart vectors train) or a word2vec file")
    return KeyedVectors.load(p, mmap=mmap) if p.is_dir() else load_word2vec(p)


def vectors_tokenizer(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """The word tokenizer that splits raw text into the words of the vectors at ``path``: its
    name and whether it lowercases, as :func:`warmstart.tokenize.make_tokenizer` takes them.

    Vectors trained on tagged (pre-segmented) text read raw text with jieba; a word2vec file
    does not say how it was made: words, as written.
    """
    made_with = read_meta(path).get("config", {}) if Path(path).is_dir() else {}
    name = str(made_with.get("tokenizer", "words"))
    return {"tagged": "jieba"}.get(name, name), bool(made_with.get("lowercase", False))

