"""What the fuzz tests share: example budgets, byte mutations, JSON and TOML values, checks.

Every fuzz test states one property of a reader or parser a user's file reaches: it returns a
result, or raises :class:`~warmstart.errors.WarmstartError` whose message names the file (and
the line, where it gives one), never another exception, and never leaves a partial output
file behind. :func:`user_error` checks such a message.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import SHORT_EXAMPLES
from hypothesis import settings
from hypothesis import strategies as st

from warmstart.errors import WarmstartError


def scale() -> float:
    """How many times the short profile's examples the loaded profile runs (1 or 100)."""
    return settings.default.max_examples / SHORT_EXAMPLES


def budget(n: int) -> settings:
    """``n`` examples under the short profile, scaled by the loaded profile's example count.

    Decorators run at collection, after ``--hypothesis-profile`` has loaded its profile, so the
    long profile gives every test a hundred times its short budget.
    """
    return settings(max_examples=max(1, round(n * scale())))


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A fresh temporary folder for one example (pytest's tmp_path is per test, not example)."""
    with tempfile.TemporaryDirectory(prefix="ws-fuzz-") as d:
        yield Path(d)


# -- files ---------------------------------------------------------------------------------

COMPRESSION_SUFFIXES = ("", ".gz", ".bz2", ".xz")


def compress(data: bytes, suffix: str) -> bytes:
    """``data`` compressed as a file ending in ``suffix`` would be (deterministically)."""
    if suffix == ".gz":
        return gzip.compress(data, mtime=0)
    if suffix == ".bz2":
        return bz2.compress(data)
    if suffix == ".xz":
        return lzma.compress(data)
    return data


def listing(folder: Path) -> set[str]:
    """Every path under ``folder``, relative to it: to compare before and after a call."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def temporaries(folder: Path) -> list[str]:
    """Temporary files or folders a writer left under ``folder`` (its `.NAME.*` staging names)."""
    return [name for name in listing(folder)
            if re.search(r"(^|/)\.[^/]*\.(tmp|building)$|(^|/)\.[^/]*\.old-\d+$", name)]


# Byte strings that readers treat specially: separators, quotes, line ends (also Unicode
# ones), a BOM, cut or invalid UTF-8, NUL, and numbers at the edges of their types.
INTERESTING = (
    b"\x00", b"\n", b"\r", b"\r\n", b"\t", b" ", b",", b'"', b"'", b"\\", b"\xef\xbb\xbf",
    b"\xff", b"\xc3", b"\xe2\x80\xa8", b"\xc2\x85", b"\xc2\xa0", b"\x0b", b"\x0c", b"\x1c",
    b"{", b"}", b"[", b"]", b":", b"=", b"#", b"nan", b"inf", b"-inf", b"-0", b"1e999",
    b"-1", b"0", b"99999999999999999999", b"4294967296", b"__label__", b"__label__ ",
    b"null", b"true", b'""', b"{}", b"[]", b"\n\n", b"1_0", b"0x1p3",
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` after a few random edits: byte flips, insertions of special bytes, deletions,
    truncation, duplicated runs."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "dup", "replace")))
        pos = draw(st.integers(0, len(buf)))
        chunk = st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8)
        if op == "flip" and buf:
            buf[min(pos, len(buf) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(chunk)
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del buf[pos:]
        elif op == "dup":
            buf[pos:pos] = buf[pos : pos + draw(st.integers(1, 32))]
        elif op == "replace":
            buf[pos : pos + draw(st.integers(1, 8))] = draw(chunk)
    return bytes(buf)


def maybe_mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` as it is about half of the time, else :func:`mutated`."""
    return st.just(data) | mutated(data)


# -- values --------------------------------------------------------------------------------

#: Text that UTF-8 can encode (no lone surrogates), some of it in other scripts.
utf8_text = st.text(st.characters(codec="utf-8"), max_size=30)

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
                | st.text(max_size=12))
#: Any JSON value (NaN and infinities included, as Python's json module writes them).
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def toml_string(s: str) -> str:
    """``s`` as a TOML basic string (control characters escaped, as TOML requires)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """A TOML value: strings, integers, floats, booleans, arrays and inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def toml_document(tables: dict[str, dict[str, Any]], top: dict[str, Any] | None = None) -> str:
    """A TOML file: ``top``'s keys, then one ``[name]`` table per entry of ``tables``."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in (top or {}).items()]
    for name, body in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{toml_string(k)} = {toml_value(v)}" for k, v in body.items())
    return "\n".join(lines) + "\n"


#: Values a TOML file can hold (no nulls, integers within 64 bits), nested a little.
toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats()
                | st.text(st.characters(codec="utf-8"), max_size=10))
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


# -- checks --------------------------------------------------------------------------------


def user_error(error: WarmstartError, *names: object) -> str:
    """Check that a WarmstartError's message names one of ``names`` (a file, folder or
    option); return the message."""
    message = str(error)
    assert message.strip(), "empty error message"
    assert any(str(n) in message for n in names), (
        f"the message names none of {[str(n) for n in names]}: {message}"
    )
    return message


def cited_lines(message: str, path: Path) -> list[int]:
    """Line numbers the message gives for ``path`` (``PATH:N`` or ``PATH, line N``)."""
    where = re.escape(str(path))
    return [int(n) for n in re.findall(where + r"(?::|, line )(\d+)", message)]


def json_text(value: Any) -> str:
    """``value`` as JSON, as Python writes it (NaN and Infinity included)."""
    return json.dumps(value, ensure_ascii=False)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def json_mutated(draw: st.DrawFn, value: Any, max_ops: int = 3) -> Any:
    """A deep copy of JSON ``value`` with a few parts replaced by other JSON values, deleted,
    or wrapped in a list: valid JSON of the wrong shape."""
    value = json.loads(json.dumps(value))
    for _ in range(draw(st.integers(1, max_ops))):
        paths = list(_paths(value))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        op = draw(st.sampled_from(("replace", "delete", "wrap")))
        if not path:
            value = draw(json_values) if op != "wrap" else [value]
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "delete":
            del parent[key]
        elif op == "wrap":
            parent[key] = [parent[key]]
        else:
            parent[key] = draw(json_values)
    return value
