"""The word2vec text and binary formats, for exchange with other tools.

Both start with a text header ``"<n words> <dim>\\n"``. The text format then has one line per
word, ``word v1 v2 ... vdim``; the binary format has, per word, the UTF-8 word, a space and
``dim`` little-endian float32 values (the C tool writes a newline after each vector, gensim does
not; both are read). Files ending in ``.gz`` or ``.bz2`` are compressed on writing, and
compressed files are recognised by content on reading.

Text files are written with (at most) 9 significant digits, which is enough for every float32
to come back bit for bit, here and in gensim. Both directions run in compiled loops, so a
100,000 x 100 text file is written or read in about a second.

    >>> save_word2vec(kv, "vectors.txt")                 # doctest: +SKIP
    >>> kv2 = load_word2vec("GoogleNews.bin.gz")         # doctest: +SKIP
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, cast

import numba
import numpy as np

from warmstart.artifact import atomic_file
from warmstart.errors import WarmstartError
from warmstart.vectors.keyed import KeyedVectors

# Bytes read, and rows written, per step: memory beyond the matrix itself stays bounded.
_CHUNK = 16 << 20
_WRITE_ROWS = 10000
# Characters that end a word in one reader or another (C word2vec splits on space, tab, newline).
_FORBIDDEN = (" ", "\t", "\n", "\r")


def save_word2vec(kv: KeyedVectors, path: str | os.PathLike[str], *, binary: bool = False) -> None:
    """Write ``kv`` in word2vec text (or ``binary``) format, atomically.

    The words keep their order (most frequent first). A ``.gz``/``.bz2`` suffix compresses.
    Words containing whitespace, or empty words, cannot be represented: WarmstartError.
    """
    path = Path(path)
    joined = "".join(kv.words)
    if any(ch in joined for ch in _FORBIDDEN) or not all(kv.words):
        i, w = next((i, w) for i, w in enumerate(kv.words) if not w or set(w) & set(_FORBIDDEN))
        raise WarmstartError(
            f"{path}: word #{i} {w!r} is empty or contains whitespace, which the word2vec "
            "format cannot represent; fix the tokenizer or export to a warmstart artifact"
        )
    if not path.parent.is_dir():
        raise WarmstartError(f"{path}: folder {path.parent} does not exist")
    with atomic_file(path) as raw, _compressor(raw, path) as out:
        out.write(f"{len(kv)} {kv.dim}\n".encode())
        if binary:
            _write_binary(out, kv)
        else:
            _write_text(out, kv)


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
        words = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        block = np.ascontiguousarray(kv.vectors[start : start + _WRITE_ROWS], dtype=np.float32)
        buf = np.empty(len(words) + block.size * _MAX_NUMBER + 2 * len(encoded), dtype=np.uint8)
        out.write(buf[: _format_rows(words, offsets, block, buf)].tobytes())


# Powers of ten as the nearest float64s (exact up to 1e22, which the parser relies on).
_POW10 = np.array([float(10**i) for i in range(60)])
_LOG10_2 = math.log10(2.0)
_MAX_NUMBER = 17  # bytes of one formatted value with its separator: "-1.23456789e-45 "


@numba.njit(cache=True, nogil=True)
def _format_rows(words, offsets, vectors, out):  # pragma: no cover - jit
    """Write a ``word v1 .. vdim`` line per row into ``out``; return the bytes written."""
    p = 0
    digits = np.empty(9, np.uint8)
    for i in range(vectors.shape[0]):
        for b in range(offsets[i], offsets[i + 1]):
            out[p] = words[b]
            p += 1
        for j in range(vectors.shape[1]):
            out[p] = 32
            p = _format_float(np.float64(vectors[i, j]), out, p + 1, digits)
        out[p] = 10
        p += 1
    return p


@numba.njit(cache=True, nogil=True)
def _scaled(x, e):  # pragma: no cover - jit
    """``x * 10**(8 - e)`` rounded to an integer: the 9 leading digits of ``x`` if e is its exponent."""
    k = 8 - e
    m = x * _POW10[k] if k >= 0 else x / _POW10[-k]
    return np.int64(np.rint(m))


@numba.njit(cache=True, nogil=True)
def _format_float(x, out, p, digits):  # pragma: no cover - jit
    """Write float32 ``x`` (given as a float64) with 9 significant digits at ``out[p]``;
    return the position after it. ``digits`` is scratch space for 9 digits.

    The digits come from one scaling in float64, so at a near-tie the last one may round the
    other way than a correctly rounded ``%.9g``; the value written is still within a tenth of
    a float32 ulp of ``x``, so every reader that rounds to nearest gets ``x`` back. Trailing
    zeros are dropped; the layout is ``%g``'s: positional for exponents -4..8, else
    ``d.ddde-XX``.
    """
    if x != x:
        out[p : p + 3] = _NAN
        return p + 3
    if x < 0 or (x == 0 and math.copysign(1.0, x) < 0):
        out[p] = 45  # '-'
        p += 1
        x = -x
    if x == math.inf:
        out[p : p + 3] = _INF
        return p + 3
    if x == 0:
        out[p] = 48
        return p + 1
    # A decimal exponent from the binary one: low by at most one, which the next lines fix.
    e = int(math.floor((math.frexp(x)[1] - 1) * _LOG10_2))
    d = _scaled(x, e)
    if d >= 1_000_000_000:
        e += 1
        d = _scaled(x, e)
    elif d < 100_000_000:
        e -= 1
        d = _scaled(x, e)
    nd = 9
    while d % 10 == 0:
        d //= 10
        nd -= 1
    for i in range(nd - 1, -1, -1):
        digits[i] = 48 + d % 10
        d //= 10
    if -4 <= e < 9:
        if e < 0:
            out[p] = 48
            out[p + 1] = 46
            p += 2
            for _ in range(-e - 1):
                out[p] = 48
                p += 1
            for i in range(nd):
                out[p] = digits[i]
                p += 1
            return p
        for i in range(e + 1):
            out[p] = digits[i] if i < nd else 48
            p += 1
        if nd > e + 1:
            out[p] = 46
            p += 1
            for i in range(e + 1, nd):
                out[p] = digits[i]
                p += 1
        return p
    out[p] = digits[0]
    p += 1
    if nd > 1:
        out[p] = 46
        p += 1
        for i in range(1, nd):
            out[p] = digits[i]
            p += 1
    out[p] = 101  # 'e'
    out[p + 1] = 45 if e < 0 else 43
    e = abs(e)
    out[p + 2] = 48 + e // 10
    out[p + 3] = 48 + e % 10
    return p + 4


_NAN = np.frombuffer(b"nan", dtype=np.uint8).copy()
_INF = np.frombuffer(b"inf", dtype=np.uint8).copy()


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
    """Whether the first entry after the header is a text line of a word and ``dim`` numbers."""
    end = buf.find(b"\n")
    line = buf if end < 0 else buf[:end]
    if not line.strip():
        return True  # nothing (or an empty line) follows the header: let the text reader report it
    try:
        parts = line.decode("utf-8").split()
        if len(parts) != dim + 1:
            return False
        np.array(parts[1:], dtype=np.float32)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _read_text(
    f: io.BufferedIOBase, buf: bytes, path: Path, n: int, dim: int
) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    vectors = np.empty((n, dim), np.float32)
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
        block = np.frombuffer(buf, dtype=np.uint8, count=cut)
        spans = np.zeros((rows, 3), dtype=np.int64)
        status = np.zeros(rows, dtype=np.int8)
        k = _parse_lines(block, dim, vectors[done : done + rows], spans, status) if cut else 0
        for ws, we, _ in spans[:k].tolist():
            words.append(buf[ws:we].decode("utf-8", errors="replace"))
        for i in np.flatnonzero(status[:k]).tolist():  # lines the fast parser left to numpy
            _, we, end = spans[i].tolist()
            vectors[done + i] = _parse_slow(buf[we:end], path, done + i + 2, dim)
        if eof:
            if len(words) < n:
                raise WarmstartError(
                    f"{path}, line {len(words) + 2}: file ends after {len(words)} of the {n} "
                    "words its header promises; the file is truncated or the header is wrong"
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


@numba.njit(cache=True, nogil=True)
def _parse_lines(data, dim, out, spans, status):  # pragma: no cover - jit
    """Parse text lines ``word v1 .. vdim`` of ``data`` into ``out`` (at most len(out) lines).

    Per line ``i``: ``spans[i] = (word start, word end, end of numbers)``, and ``status[i]`` 0
    when ``out[i]`` holds its numbers, 1 when the line needs numpy's parser (a count other than
    ``dim``, or a number outside the fast path). Returns the number of lines seen.

    Numbers with at most 15 significant digits and a decimal exponent within +-22 are exact
    doubles times or over an exact power of ten: one correctly rounded operation (Clinger's
    fast path), so the result equals strtod's, then rounded to float32 as numpy does.
    """
    size = len(data)
    pos = 0
    k = 0
    while pos < size and k < len(out):
        end = pos
        while end < size and data[end] != 10:
            end += 1
        nxt = end + 1
        while end > pos and (data[end - 1] == 32 or data[end - 1] == 9 or data[end - 1] == 13):
            end -= 1
        we = pos
        while we < end and data[we] != 32:
            we += 1
        spans[k, 0] = pos
        spans[k, 1] = we
        spans[k, 2] = end
        j = we
        count = 0
        bad = False
        while not bad:
            while j < end and (data[j] == 32 or data[j] == 9):
                j += 1
            if j >= end:
                break
            if count == dim:
                bad = True
                break
            neg = False
            if data[j] == 45:  # '-'
                neg = True
                j += 1
            elif data[j] == 43:  # '+'
                j += 1
            mant = 0
            digits = 0  # significant digits
            frac = 0
            seen = False
            while j < end and 48 <= data[j] <= 57:
                d = data[j] - 48
                if mant > 0 or d > 0:
                    digits += 1
                if digits <= 15:
                    mant = mant * 10 + d
                seen = True
                j += 1
            if j < end and data[j] == 46:  # '.'
                j += 1
                while j < end and 48 <= data[j] <= 57:
                    d = data[j] - 48
                    if mant > 0 or d > 0:
                        digits += 1
                    if digits <= 15:
                        mant = mant * 10 + d
                        frac += 1
                    seen = True
                    j += 1
            exp = 0
            if j < end and (data[j] == 101 or data[j] == 69):  # 'e' 'E'
                j += 1
                eneg = False
                if j < end and (data[j] == 45 or data[j] == 43):
                    eneg = data[j] == 45
                    j += 1
                edigits = 0
                while j < end and 48 <= data[j] <= 57:
                    if exp < 10000:
                        exp = exp * 10 + (data[j] - 48)
                    edigits += 1
                    j += 1
                if edigits == 0:
                    bad = True
                if eneg:
                    exp = -exp
            if not seen or digits > 15 or (j < end and data[j] != 32 and data[j] != 9):
                bad = True
                break
            e10 = exp - frac
            if mant == 0:
                v = 0.0
            elif 0 <= e10 <= 22:
                v = mant * _POW10[e10]
            elif -22 <= e10 < 0:
                v = mant / _POW10[-e10]
            else:
                bad = True
                break
            out[k, count] = -v if neg else v
            count += 1
        status[k] = 1 if bad or count != dim else 0
        k += 1
        pos = nxt
    return k


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
    vectors = np.empty((n, dim), np.float32)
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
