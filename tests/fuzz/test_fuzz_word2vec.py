"""Fuzzing the word2vec text and binary formats (warmstart.vectors.formats).

Properties: save -> load -> save is the identity, bit for bit, for any words the format can
hold (and any float32 values, NaN and infinities included), plain or compressed; a word the
format cannot hold is a WarmstartError and no file; and any damaged file, header or body,
loads or fails with a WarmstartError naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from fuzzkit import budget, cited_lines, listing, mutated, user_error, workdir
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from warmstart.errors import WarmstartError
from warmstart.vectors.formats import load_word2vec, save_word2vec
from warmstart.vectors.keyed import KeyedVectors

# A word ends at a space in every reader (a tab or line break too in the C tool's); any
# other character, Unicode spaces and line separators included, is part of the word.
words = st.text(st.characters(codec="utf-8", exclude_characters=" \t\n\r"),
                min_size=1, max_size=8)


@st.composite
def keyed_vectors(draw: st.DrawFn, *, max_words: int = 8) -> KeyedVectors:
    vocab = draw(st.lists(words, max_size=max_words, unique=True))
    dim = draw(st.integers(1, 6))
    vectors = draw(hnp.arrays(np.float32, (len(vocab), dim),
                              elements=st.floats(width=32, allow_nan=True)))
    return KeyedVectors(vocab, vectors)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def load_quietly(path: Path, **kw: object) -> KeyedVectors:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_word2vec(path, **kw)  # type: ignore[arg-type]


#: Found by the campaign: a word holding a character Python's str.split() takes for
#: whitespace (NEL, LINE SEPARATOR, VT, FS) made the text file look binary to the reader.
ODD_WORDS = KeyedVectors(["0\x850", "\u2028x", "a\x0bb", "\x1c", "\xa0"],
                         np.arange(10, dtype=np.float32).reshape(5, 2))


@given(keyed_vectors(), st.booleans(), st.sampled_from(("", ".gz", ".bz2")))
@budget(60)
@example(ODD_WORDS, False, "").via("found by the campaign")
@example(ODD_WORDS, True, ".gz").via("found by the campaign")
def test_save_load_save_is_the_identity(kv: KeyedVectors, binary: bool, zsuffix: str) -> None:
    with workdir() as d:
        # one file name in two folders: gzip keeps the name in its header
        first, second = d / "1" / f"v.w2v{zsuffix}", d / "2" / f"v.w2v{zsuffix}"
        first.parent.mkdir()
        second.parent.mkdir()
        save_word2vec(kv, first, binary=binary)
        for detect in (None, binary):
            back = load_quietly(first, binary=detect)
            assert back.words == kv.words
            if binary:
                assert same_bits(back.vectors, kv.vectors)
            else:  # "%.9g" is exact for every float32; a NaN's payload is not kept
                assert np.array_equal(back.vectors, kv.vectors, equal_nan=True)
                nan = np.isnan(kv.vectors)
                assert same_bits(back.vectors[~nan], kv.vectors[~nan])
        save_word2vec(back, second, binary=binary)
        assert first.read_bytes() == second.read_bytes()
        assert listing(d) == {"1", "2", f"1/{first.name}", f"2/{second.name}"}  # no temporary


@given(st.lists(st.text(max_size=4), min_size=1, max_size=4, unique=True), st.booleans())
@budget(30)
@example(["0\x850"], False).via("found by the campaign")
@example(["\ud800"], False).via("a lone surrogate: no UTF-8 for it")
@example(["\ud800"], True).via("a lone surrogate: no UTF-8 for it")
def test_unwritable_words_fail_before_any_file(vocab: list[str], binary: bool) -> None:
    kv = KeyedVectors(vocab, np.ones((len(vocab), 2), np.float32))
    with workdir() as d:
        path = d / "v.txt"
        try:
            save_word2vec(kv, path, binary=binary)
        except WarmstartError as e:
            user_error(e, path)
            assert listing(d) == set()
            return
        assert load_quietly(path).words == vocab


@pytest.mark.parametrize("binary", [False, True])
def test_zero_dimensional_vectors_are_refused(tmp_path: Path, binary: bool) -> None:
    """A header of dimension 0 is one no reader takes (ours included): refuse to write it."""
    path = tmp_path / "v.txt"
    with pytest.raises(WarmstartError) as e:
        save_word2vec(KeyedVectors(["a"], np.zeros((1, 0), np.float32)), path, binary=binary)
    user_error(e.value, path)
    assert listing(tmp_path) == set()


# -- damaged files -------------------------------------------------------------------------

HEADERS = st.sampled_from((
    "0 1", "1 1", "3 2", "-1 2", "2 -3", "2 0", "1_0 2", "+2 2", "2", "2 2 2", "", "a b",
    "99999999999 99999999999", "4294967297 1", "1 4294967297", "100000 100000",
    "1000000000000000000 1000000000000000000", "2 2.0", "\u0662 2",
))


@st.composite
def word2vec_file(draw: st.DrawFn) -> tuple[bytes, str]:
    """(file bytes, suffix): a saved file, damaged, often with a lying header, maybe
    compressed (and the compressed stream damaged too)."""
    kv = draw(keyed_vectors(max_words=5))
    binary = draw(st.booleans())
    with workdir() as d:
        path = d / "v"
        save_word2vec(kv, path, binary=binary)
        data = path.read_bytes()
    if draw(st.booleans()):
        data = draw(HEADERS).encode() + b"\n" + data.split(b"\n", 1)[1]
    data = draw(mutated(data))
    zsuffix = draw(st.sampled_from(("", ".gz", ".bz2")))
    if zsuffix == ".gz":
        data = gzip.compress(data, mtime=0)
    elif zsuffix == ".bz2":
        data = bz2.compress(data)
    if zsuffix and draw(st.booleans()):
        data = draw(mutated(data, max_ops=2))
    return data, zsuffix


@given(word2vec_file(), st.sampled_from((None, False, True)),
       st.none() | st.integers(-2, 6))
@budget(100)
@example((b" 1 1", ""), None, None).via("found by the campaign: line 2 of a one-line file")
def test_damaged_files_load_or_fail_naming_the_file(case: tuple[bytes, str], binary: bool | None,
                                                    limit: int | None) -> None:
    data, zsuffix = case
    with workdir() as d:
        path = d / f"v.bin{zsuffix}"
        path.write_bytes(data)
        try:
            kv = load_quietly(path, binary=binary, limit=limit)
        except WarmstartError as e:
            message = user_error(e, path, "limit")
            n_lines = data.count(b"\n") + 1
            for line in cited_lines(message, path):
                assert 1 <= line <= (n_lines if not zsuffix else line), message
            return
        assert kv.vectors.dtype == np.float32 and kv.vectors.ndim == 2
        assert len(kv.words) == len(set(kv.words)) == len(kv.vectors)
        if limit is not None:
            assert len(kv) <= limit


@given(st.binary(max_size=200))
@budget(30)
def test_random_bytes(data: bytes) -> None:
    with workdir() as d:
        path = d / "v.txt"
        path.write_bytes(data)
        try:
            kv = load_quietly(path)
        except WarmstartError as e:
            assert str(path) in str(e), f"the message does not name the file: {e}"
            return
    assert len(kv.words) == len(set(kv.words)) == len(kv.vectors)


@pytest.mark.parametrize("header", [b"100000000 100000000\n", b"4611686018427387904 2\n",
                                    b"2 4611686018427387904\n"])
@pytest.mark.parametrize("zsuffix", ["", ".gz"])
def test_a_header_promising_more_than_memory(tmp_path: Path, header: bytes, zsuffix: str) -> None:
    """A compressed file's size says nothing of what its header promises: an impossible
    array is a WarmstartError, not a MemoryError."""
    data = header + b"a 1 2\n"
    path = tmp_path / f"v.txt{zsuffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if zsuffix else data)
    with pytest.raises(WarmstartError) as e:
        load_quietly(path)
    user_error(e.value, path)
