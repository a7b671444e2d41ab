"""word2vec text and binary formats: exact round trips, gensim interop, compression, errors."""

from __future__ import annotations

import bz2
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from warmstart.errors import WarmstartError
from warmstart.vectors.formats import load_word2vec, save_word2vec
from warmstart.vectors.keyed import KeyedVectors

WORDS = ["的", "北京", "the", "Straße", "naïve", "x", "上海市", "a_b", "日本語テキスト", "z"]


def make_kv(n: int = len(WORDS), dim: int = 7, seed: int = 0) -> KeyedVectors:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors[0, :3] = [0.0, -0.0, 1.0]
    vectors[1, :4] = [1e-45, 3.4028235e38, -1.1754944e-38, 0.1]  # extremes and a non-dyadic
    vectors[2] *= 1e-6
    words = WORDS if n == len(WORDS) else [f"w{i}" for i in range(n)]
    return KeyedVectors(words, vectors)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2"])
def test_round_trip_is_exact(tmp_path: Path, binary: bool, suffix: str) -> None:
    kv = make_kv()
    path = tmp_path / f"v.{'bin' if binary else 'txt'}{suffix}"
    save_word2vec(kv, path, binary=binary)
    raw = path.read_bytes()
    if suffix == ".gz":
        raw = gzip.decompress(raw)
    elif suffix == ".bz2":
        raw = bz2.decompress(raw)
    assert raw.startswith(f"{len(kv)} {kv.dim}\n".encode())
    for detect in (None, binary):
        back = load_word2vec(path, binary=detect)
        assert back.words == kv.words
        assert same_bits(back.vectors, kv.vectors)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_text_layout(tmp_path: Path) -> None:
    kv = KeyedVectors(["a", "b"], np.array([[0.5, -2.0], [0.1, 1e-5]], np.float32))
    save_word2vec(kv, tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_text() == "2 2\na 0.5 -2\nb 0.100000001 9.99999975e-06\n"


def test_binary_layout_is_the_c_tools(tmp_path: Path) -> None:
    kv = KeyedVectors(["ab", "北"], np.array([[1, 2], [3, 4]], np.float32))
    save_word2vec(kv, tmp_path / "v.bin", binary=True)
    first = b"ab " + struct.pack("<2f", 1, 2) + b"\n"
    want = b"2 2\n" + first + "北 ".encode() + struct.pack("<2f", 3, 4) + b"\n"
    assert (tmp_path / "v.bin").read_bytes() == want


def test_many_float32_values_round_trip_as_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=200 * 50, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32).copy()
    values[~np.isfinite(values)] = 1.5
    kv = KeyedVectors([f"w{i}" for i in range(200)], values.reshape(200, 50))
    save_word2vec(kv, tmp_path / "v.txt")
    assert same_bits(load_word2vec(tmp_path / "v.txt").vectors, kv.vectors)
    # and any reader that parses decimals correctly gets the same bits
    lines = (tmp_path / "v.txt").read_text().splitlines()[1:]
    parsed = np.array([[float(x) for x in line.split()[1:]] for line in lines], dtype=np.float32)
    assert same_bits(parsed, kv.vectors)


def test_limit(tmp_path: Path) -> None:
    kv = make_kv()
    for binary in (False, True):
        save_word2vec(kv, tmp_path / "v", binary=binary)
        back = load_word2vec(tmp_path / "v", limit=3)
        assert back.words == kv.words[:3] and same_bits(back.vectors, kv.vectors[:3])
        assert len(load_word2vec(tmp_path / "v", limit=0)) == 0


def test_large_file_crosses_read_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warmstart.vectors.formats as formats

    monkeypatch.setattr(formats, "_CHUNK", 1000)
    kv = make_kv(n=500, dim=13)
    for binary in (False, True):
        save_word2vec(kv, tmp_path / "v", binary=binary)
        back = load_word2vec(tmp_path / "v")
        assert back.words == kv.words and same_bits(back.vectors, kv.vectors)


# -- gensim interop ------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_our_files(tmp_path: Path, binary: bool) -> None:
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors").KeyedVectors
    kv = make_kv()
    save_word2vec(kv, tmp_path / "v", binary=binary)
    g = gensim_kv.load_word2vec_format(str(tmp_path / "v"), binary=binary)
    assert g.index_to_key == kv.words
    assert same_bits(g.vectors, kv.vectors)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_we_read_gensims_files(tmp_path: Path, binary: bool, suffix: str) -> None:
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors").KeyedVectors
    kv = make_kv()
    g = gensim_kv(kv.dim)
    g.add_vectors(kv.words, kv.vectors)
    path = tmp_path / f"g{suffix}"
    g.save_word2vec_format(str(path), binary=binary)
    back = load_word2vec(path)
    assert back.words == kv.words
    assert same_bits(back.vectors, kv.vectors)


def test_binary_without_newlines_and_with_cut_utf8(tmp_path: Path) -> None:
    # gensim writes no newline after a vector; the C tool may cut a word inside a character.
    body = b"2 2\n" + "北".encode()[:2] + b" " + struct.pack("<2f", 1, 2)
    body += b"ok " + struct.pack("<2f", 3, 4)
    (tmp_path / "v.bin").write_bytes(body)
    back = load_word2vec(tmp_path / "v.bin")
    assert back.words == ["\ufffd", "ok"]
    assert np.array_equal(back.vectors, [[1, 2], [3, 4]])


def test_text_variants(tmp_path: Path) -> None:
    # C word2vec leaves a space before the newline; some files use CRLF or several spaces.
    (tmp_path / "v.txt").write_bytes(b"3 2\r\na 1 2 \r\nb  3.5\t-4e-1\nc +0.25 1E2")
    back = load_word2vec(tmp_path / "v.txt")
    assert back.words == ["a", "b", "c"]
    assert np.array_equal(back.vectors, np.array([[1, 2], [3.5, -0.4], [0.25, 100]], np.float32))


def test_numbers_outside_the_fast_path(tmp_path: Path) -> None:
    values = ["0.1234567890123456789", "1e-40", "nan", "-inf", "3.4e38", "123456789012345678"]
    (tmp_path / "v.txt").write_text(f"1 {len(values)}\nw {' '.join(values)}\n")
    got = load_word2vec(tmp_path / "v.txt").vectors[0]
    want = np.array([float(v) for v in values], dtype=np.float32)
    assert np.array_equal(got, want, equal_nan=True)


def test_duplicate_words_keep_the_first(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("3 1\na 1\nb 2\na 3\n")
    with pytest.warns(UserWarning, match="1 duplicate words"):
        back = load_word2vec(tmp_path / "v.txt")
    assert back.words == ["a", "b"] and back.vectors[:, 0].tolist() == [1, 2]


# -- errors --------------------------------------------------------------------------------
def test_unwritable_words(tmp_path: Path) -> None:
    for bad in ("new york", "tab\there", "line\nbreak", ""):
        kv = KeyedVectors(["ok", bad], np.zeros((2, 2), np.float32))
        with pytest.raises(WarmstartError, match=r"word #1 .* whitespace"):
            save_word2vec(kv, tmp_path / "v.txt")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WarmstartError, match="does not exist"):
        save_word2vec(make_kv(), tmp_path / "no" / "v.txt")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match=r"v\.txt: no such file"):
        load_word2vec(tmp_path / "v.txt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"line 1: bad header"),
        (b"hello world\n", r"line 1: bad header"),
        (b"3\n", r"line 1: bad header"),
        (b"2 3\na 1 2 3\nb 1 2\n", r"line 3: expected a word and 3 numbers, found 2"),
        (b"2 3\na 1 2 3\nb 1 2 3 4\n", r"line 3: expected a word and 3 numbers, found 4"),
        (b"2 3\na 1 2 3\n\nb 1 2 3\n", r"line 3: expected a word and 3 numbers, found 0"),
        (b"2 3\na 1 x 3\nb 1 2 3\n", r"line 2: b'x' is not a number"),
        (b"3 3\na 1.5 2 3\nb 1.5 2 3\n", r"line 3: the file ends here, after 2 of the 3 words"),
        (b"99999999999 300\na 1\n", r"line 1: the header promises 99999999999 words"),
    ],
)
def test_malformed_text_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(WarmstartError, match=r"bad\.txt.*" + message):
        load_word2vec(path, binary=False if content else None)


def test_truncated_binary(tmp_path: Path) -> None:
    save_word2vec(make_kv(), tmp_path / "v.bin", binary=True)
    data = (tmp_path / "v.bin").read_bytes()
    (tmp_path / "v.bin").write_bytes(data[:-20])
    with pytest.raises(WarmstartError, match=r"v\.bin: binary file ends inside entry 10 of the 10"):
        load_word2vec(tmp_path / "v.bin")


def test_corrupt_gzip(tmp_path: Path) -> None:
    save_word2vec(make_kv(), tmp_path / "v.txt.gz")
    data = (tmp_path / "v.txt.gz").read_bytes()
    (tmp_path / "v.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(WarmstartError, match=r"v\.txt\.gz"):
        load_word2vec(tmp_path / "v.txt.gz")
