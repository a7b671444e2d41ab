"""KeyedVectors: lookups, neighbours, analogies, n-gram composition, artifact round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from warmstart import artifact
from warmstart.errors import WarmstartError
from warmstart.vectors.keyed import KeyedVectors, top_k
from warmstart.vectors.subwords import ngram_buckets

# Five words at known angles in the plane, plus a zero vector.
WORDS = ["east", "northeast", "north", "west", "south", "nothing"]
PLANE = np.array([[1, 0], [1, 1], [0, 1], [-1, 0], [0, -1], [0, 0]], dtype=np.float32)


@pytest.fixture
def kv() -> KeyedVectors:
    return KeyedVectors(WORDS, PLANE, counts=np.arange(6, 0, -1))


def royal() -> KeyedVectors:
    """Axes: male, female, royal, noise. king - man + woman lands on queen."""
    words = ["man", "woman", "king", "queen", "prince", "apple"]
    vectors = np.array(
        [
            [1.0, 0.0, 0.0, 0.1],
            [0.0, 1.0, 0.0, 0.1],
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 0.8, 0.3],
            [0.0, 0.0, 0.0, 1.0],
        ],
        dtype=np.float32,
    )
    return KeyedVectors(words, vectors)


def subword_kv(bucket: int = 50) -> KeyedVectors:
    rng = np.random.default_rng(3)
    words = ["walking", "talking", "walked"]
    return KeyedVectors(
        words,
        rng.standard_normal((3, 8)).astype(np.float32),
        counts=np.array([9, 5, 2]),
        ngram_vectors=rng.standard_normal((bucket, 8)).astype(np.float32),
        min_n=3,
        max_n=5,
    )


# -- lookups -------------------------------------------------------------------------------
def test_lookups(kv: KeyedVectors) -> None:
    assert len(kv) == 6 and kv.dim == 2 and kv.bucket == 0
    assert "north" in kv and "up" not in kv
    assert kv.index("west") == 3
    assert np.array_equal(kv["north"], [0, 1])
    assert np.array_equal(kv.get_vector("northeast"), [1, 1])
    np.testing.assert_allclose(kv.get_vector("northeast", norm=True), [2**-0.5, 2**-0.5], rtol=1e-6)
    assert kv.has_vector("north") and not kv.has_vector("up")
    with pytest.raises(KeyError, match="'up' is not in the vocabulary"):
        kv["up"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        kv.index("up")
    assert kv.counts is not None and kv.counts.dtype == np.int64


def test_normed_is_cached_and_keeps_zero_vectors_zero(kv: KeyedVectors) -> None:
    normed = kv.normed
    assert normed is kv.normed and normed.dtype == np.float32
    assert not np.isnan(normed).any()
    assert np.array_equal(normed[5], [0, 0])
    np.testing.assert_allclose(np.linalg.norm(normed[:5], axis=1), 1, rtol=1e-6)
    assert kv.similarity("nothing", "east") == 0.0


def test_similarity(kv: KeyedVectors) -> None:
    assert kv.similarity("east", "north") == pytest.approx(0.0, abs=1e-7)
    assert kv.similarity("east", "west") == pytest.approx(-1.0)
    assert kv.similarity("east", "northeast") == pytest.approx(2**-0.5)


def test_constructor_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2 words but 3"):
        KeyedVectors(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="duplicate word 'a'"):
        KeyedVectors(["a", "a"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="ngram_vectors"):
        KeyedVectors(["a"], np.zeros((1, 2)), ngram_vectors=np.zeros((4, 3)), min_n=3, max_n=5)
    with pytest.raises(ValueError, match="min_n"):
        KeyedVectors(["a"], np.zeros((1, 2)), ngram_vectors=np.zeros((4, 2)))


# -- neighbours ------------------------------------------------------------------------------
def test_most_similar_exact(kv: KeyedVectors) -> None:
    got = kv.most_similar("east", topn=3)
    assert got[0] == ("northeast", pytest.approx(2**-0.5))
    assert {w for w, _ in got[1:]} <= {"north", "south", "nothing"}  # all at cosine 0
    assert [s for _, s in got[1:]] == pytest.approx([0.0, 0.0], abs=1e-7)
    assert [w for w, _ in kv.most_similar(["east", "north"], topn=1)] == ["northeast"]
    # east - north points south-east: south and east tie, east is excluded as an input.
    assert kv.most_similar(["east"], ["north"], topn=1)[0][0] == "south"
    assert kv.most_similar("east", topn=10)[-1] == ("west", pytest.approx(-1.0))
    assert len(kv.most_similar("east", topn=10)) == 5  # everything but the query
    assert kv.most_similar("east", topn=0) == []


def test_most_similar_accepts_vectors_and_restricts(kv: KeyedVectors) -> None:
    got = kv.most_similar([np.array([0.0, 3.0], np.float32)], topn=2)
    assert [w for w, _ in got] == ["north", "northeast"]  # a vector query excludes nothing
    assert [w for w, _ in kv.most_similar("west", topn=1, restrict_vocab=3)] == ["north"]


def test_most_similar_batch_equals_unbatched() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    kv = KeyedVectors(words, rng.standard_normal((3000, 16)).astype(np.float32))
    queries = words[:40] + ["w2999"]
    for topn, restrict in ((7, None), (3, 500)):
        batched = kv.most_similar_batch(queries, topn=topn, restrict_vocab=restrict)
        for q, got in zip(queries, batched, strict=True):
            want = kv.most_similar(q, topn=topn, restrict_vocab=restrict)
            assert [w for w, _ in got] == [w for w, _ in want]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    assert kv.most_similar_batch([]) == []


def test_top_k_matches_a_full_sort() -> None:
    rng = np.random.default_rng(1)
    for cols in (5, 300, 1000, 64 * 50 + 17):
        scores = rng.standard_normal((9, cols)).astype(np.float32)
        scores[:, -1] = 10.0  # the best column sits in the short tail group
        want = np.argsort(-scores, axis=1, kind="stable")[:, :6]
        assert np.array_equal(top_k(scores, 6), want)


# -- analogies -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy_king_queen(method: str) -> None:
    kv = royal()
    got = kv.analogy("man", "king", "woman", topn=3, method=method)
    assert got[0][0] == "queen"
    assert {w for w, _ in got}.isdisjoint({"man", "king", "woman"})


def test_analogy_add_is_most_similar() -> None:
    kv = royal()
    add = kv.analogy("man", "king", "woman", topn=3)
    ms = kv.most_similar(["king", "woman"], ["man"], topn=3)
    assert [w for w, _ in add] == [w for w, _ in ms]
    np.testing.assert_allclose([s for _, s in add], [s for _, s in ms], rtol=1e-5)


def test_analogy_mul_scores_follow_levy_goldberg() -> None:
    kv = royal()
    n = kv.normed
    a, b, c = (n[kv.index(w)] for w in ("man", "king", "woman"))
    s = lambda v: (n @ v + 1) / 2  # noqa: E731
    want = s(b) * s(c) / (s(a) + 1e-3)
    got = dict(kv.analogy("man", "king", "woman", topn=10, method="mul"))
    for w in ("queen", "prince", "apple"):
        assert got[w] == pytest.approx(float(want[kv.index(w)]), rel=1e-5)
    with pytest.raises(ValueError, match="'add' or 'mul'"):
        kv.analogy("man", "king", "woman", method="div")


def test_analogy_restrict_vocab() -> None:
    kv = royal()
    # queen is row 3: with only the first 3 words, nothing but the inputs is left.
    assert kv.analogy("man", "king", "woman", restrict_vocab=3) == []
    assert kv.analogy("man", "king", "woman", restrict_vocab=4)[0][0] == "queen"


# -- subwords -------------------------------------------------------------------------------
def test_oov_vector_is_mean_of_its_ngram_rows() -> None:
    kv = subword_kv()
    _, ids = ngram_buckets(["talked"], 3, 5, kv.bucket)
    assert ids.size > 0
    assert kv.ngram_vectors is not None
    want = kv.ngram_vectors[ids].sum(axis=0) / ids.size
    np.testing.assert_allclose(kv["talked"], want, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(kv.get_vector("talked", norm=True)), 1, rtol=1e-6)
    assert "talked" not in kv and kv.has_vector("talked")
    # an in-vocabulary word keeps its own (already composed) vector
    assert np.array_equal(kv["walking"], kv.vectors[0])
    assert kv.similarity("talked", "walked") == pytest.approx(
        float(_unit(kv["talked"]) @ _unit(kv["walked"])), rel=1e-5
    )
    assert kv.most_similar("talked", topn=3)[0][0] in {"walking", "talking", "walked"}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_oov_without_ngrams_is_a_key_error(kv: KeyedVectors) -> None:
    with pytest.raises(KeyError, match="no subword n-grams"):
        kv.get_vector("up")
    with pytest.raises(KeyError):
        kv.most_similar("up")


# -- save / load -----------------------------------------------------------------------------
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, kv: KeyedVectors, mmap: bool) -> None:
    out = kv.save(tmp_path / "vec", config={"model": "skipgram"}, parent="corpus", data={"h": "x"})
    meta = artifact.read_meta(out, kind="vectors")
    assert meta["config"] == {"model": "skipgram", "dim": 2, "min_n": 0, "max_n": 0, "bucket": 0}
    assert meta["parent"] == "corpus" and meta["data"] == {"h": "x"}
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == {"words": WORDS}
    back = KeyedVectors.load(out, mmap=mmap)
    assert back.words == kv.words
    assert np.array_equal(back.vectors, kv.vectors) and back.vectors.dtype == np.float32
    assert back.counts is not None and np.array_equal(back.counts, kv.counts)
    assert back.ngram_vectors is None
    assert back.most_similar("east", topn=2) == kv.most_similar("east", topn=2)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip_with_ngrams_and_unicode(tmp_path, mmap: bool) -> None:
    kv = subword_kv()
    kv = KeyedVectors(
        ["北京", "上海", "walked"], kv.vectors, ngram_vectors=kv.ngram_vectors, min_n=1, max_n=3
    )
    out = kv.save(tmp_path / "vec")
    assert "北京" in (out / "vocab.json").read_text(encoding="utf-8")
    back = KeyedVectors.load(out, mmap=mmap)
    assert back.words == kv.words and (back.min_n, back.max_n, back.bucket) == (1, 3, 50)
    assert back.ngram_vectors is not None and kv.ngram_vectors is not None
    assert np.array_equal(back.ngram_vectors, kv.ngram_vectors)
    assert np.array_equal(back.vectors, kv.vectors)
    assert back.counts is None
    assert np.array_equal(back["广州"], kv["广州"])


def test_save_replaces_an_artifact_atomically(tmp_path, kv: KeyedVectors) -> None:
    kv.save(tmp_path / "vec")
    royal().save(tmp_path / "vec")
    assert KeyedVectors.load(tmp_path / "vec").words[0] == "man"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vec"]


def test_save_into_lets_the_caller_add_files(tmp_path, kv: KeyedVectors) -> None:
    with artifact.building(tmp_path / "run") as folder:
        meta = kv.save_into(folder, config={"epochs": 5})
        (folder / "metrics.jsonl").write_text("{}\n")
    assert meta["kind"] == "vectors" and meta["config"]["epochs"] == 5
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    assert KeyedVectors.load(tmp_path / "run").words == WORDS


def test_load_errors(tmp_path, kv: KeyedVectors) -> None:
    with pytest.raises(WarmstartError, match="no such artifact folder"):
        KeyedVectors.load(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(WarmstartError, match="not a warmstart artifact"):
        KeyedVectors.load(tmp_path / "plain")

    other = tmp_path / "clf"
    other.mkdir()
    artifact.write_meta(other, kind="classifier", config={})
    with pytest.raises(WarmstartError, match="is a 'classifier' artifact"):
        KeyedVectors.load(other)

    out = kv.save(tmp_path / "vec")
    (out / "vocab.json").unlink()
    with pytest.raises(WarmstartError, match="missing vocab.json"):
        KeyedVectors.load(out)


@pytest.mark.parametrize("mmap", [False, True])
def test_load_corrupt_files(tmp_path, kv: KeyedVectors, mmap: bool) -> None:
    out = kv.save(tmp_path / "vec")
    model = out / "model.safetensors"
    good = model.read_bytes()
    model.write_bytes(good[: len(good) // 2])
    with pytest.raises(WarmstartError, match="corrupt tensor file"):
        KeyedVectors.load(out, mmap=mmap)
    model.write_bytes(b"not a tensor file at all")
    with pytest.raises(WarmstartError, match="corrupt tensor file"):
        KeyedVectors.load(out, mmap=mmap)

    model.write_bytes(good)
    (out / "vocab.json").write_text('{"words": ["a", "b"]}', encoding="utf-8")
    with pytest.raises(WarmstartError, match="2 words but model.safetensors has 6 vectors"):
        KeyedVectors.load(out, mmap=mmap)
    (out / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(WarmstartError, match="corrupt vocabulary file"):
        KeyedVectors.load(out, mmap=mmap)

    (out / "vocab.json").write_text(json.dumps({"words": WORDS}), encoding="utf-8")
    save_file({"counts": np.zeros(6, np.int64)}, str(model))
    with pytest.raises(WarmstartError, match="no 'vectors' tensor"):
        KeyedVectors.load(out, mmap=mmap)
