"""The mapping between a Hugging Face model folder and our models: its file names, its
``config.json`` keys and its parameter names, in both directions.

One name table per architecture serves reading and writing; BERT's query, key and value
are concatenated into our ``qkv``, and GPT-2's Conv1D weights, stored (in, out), are
transposed to our Linear's (out, in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig

CONFIG_FILE = "config.json"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
MODULES_FILE = "modules.json"  # sentence-transformers: the pipeline after the transformer
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"

#: model_type -> (our kind, the prefix a task-head checkpoint puts before the base model's names)
MODEL_TYPES: dict[str, tuple[str, str]] = {
    "bert": ("encoder", "bert."),
    "electra": ("encoder", "electra."),  # the discriminator: BERT's layers, no pooler
    "gpt2": ("decoder", "transformer."),
}

# The names of the base model's own tensors begin with one of these; the rest are task heads.
_BASE_ROOTS = {"encoder": ("embeddings.", "encoder.", "pooler."), "decoder": ("wte.", "wpe.", "h.", "ln_f.")}
# Buffers, not parameters: recomputed by every implementation, never loaded.
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids", ".attn.bias", ".attn.masked_bias")

_BERT_ACT = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_GPT2_ACT = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
_ACT_OUT = {"gelu": "gelu", "gelu_tanh": "gelu_new"}

# Our MaskedLMHead's parameters against BertForMaskedLM's.
MLM_HEAD_NAMES = {
    "dense.weight": "cls.predictions.transform.dense.weight",
    "dense.bias": "cls.predictions.transform.dense.bias",
    "ln.weight": "cls.predictions.transform.LayerNorm.weight",
    "ln.bias": "cls.predictions.transform.LayerNorm.bias",
    "bias": "cls.predictions.bias",
}


# -- the name tables: (our module, [HF modules], HF stores the weight as Conv1D (in, out)) --


def _name_table(kind: str, n_layers: int) -> list[tuple[str, list[str], bool]]:
    """Our module names against HF's (unprefixed) ones; several HF modules are concatenated
    along the output dimension into one of ours (BERT's query/key/value into ``qkv``)."""
    rows: list[tuple[str, list[str], bool]] = []
    if kind == "encoder":
        rows += [
            ("tok_emb", ["embeddings.word_embeddings"], False),
            ("pos_emb", ["embeddings.position_embeddings"], False),
            ("type_emb", ["embeddings.token_type_embeddings"], False),
            ("ln_emb", ["embeddings.LayerNorm"], False),
        ]
        for i in range(n_layers):
            o, h = f"layers.{i}.", f"encoder.layer.{i}."
            rows += [
                (o + "attn.qkv", [h + f"attention.self.{n}" for n in ("query", "key", "value")], False),
                (o + "attn.proj", [h + "attention.output.dense"], False),
                (o + "ln_attn", [h + "attention.output.LayerNorm"], False),
                (o + "ffn.fc", [h + "intermediate.dense"], False),
                (o + "ffn.proj", [h + "output.dense"], False),
                (o + "ln_ffn", [h + "output.LayerNorm"], False),
            ]
        rows.append(("pooler", ["pooler.dense"], False))
    else:
        rows += [("tok_emb", ["wte"], False), ("pos_emb", ["wpe"], False)]
        for i in range(n_layers):
            o, h = f"blocks.{i}.", f"h.{i}."
            rows += [
                (o + "ln_attn", [h + "ln_1"], False),
                (o + "attn.qkv", [h + "attn.c_attn"], True),
                (o + "attn.proj", [h + "attn.c_proj"], True),
                (o + "ln_ffn", [h + "ln_2"], False),
                (o + "ffn.fc", [h + "mlp.c_fc"], True),
                (o + "ffn.proj", [h + "mlp.c_proj"], True),
            ]
        rows.append(("ln_out", ["ln_f"], False))
    return rows


def _params(module: str) -> tuple[str, ...]:
    return ("weight",) if module in ("tok_emb", "pos_emb", "type_emb") else ("weight", "bias")


# -- reading: config.json and weights to ours ---------------------------------------------


def bert_config(hf: dict[str, Any], where: Path) -> TransformerConfig:
    """Our encoder's config from a BERT-family ``config.json`` (``hf``, read from ``where``);
    what our encoder cannot run is refused with a message that names the key."""
    pos_type = hf.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise WarmstartError(
            f"{where}: position_embedding_type {pos_type!r} is not supported; "
            "warmstart's encoder has learned absolute positions only"
        )
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise WarmstartError(f"{where}: a BERT used as a decoder (is_decoder) is not supported")
    hidden = hf["hidden_size"]
    if hf.get("embedding_size", hidden) != hidden:
        raise WarmstartError(
            f"{where}: embedding_size {hf['embedding_size']} differs from hidden_size {hidden}; "
            "embedding projections (ELECTRA generators, small ELECTRA) are not supported"
        )
    return _config(
        where,
        vocab_size=hf["vocab_size"],
        n_layers=hf["num_hidden_layers"],
        hidden=hidden,
        n_heads=hf["num_attention_heads"],
        ffn=hf["intermediate_size"],
        max_positions=hf.get("max_position_embeddings", 512),
        type_vocab_size=hf.get("type_vocab_size", 2),
        dropout=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
        activation=_activation(hf.get("hidden_act", "gelu"), _BERT_ACT, "hidden_act", where),
        pad_id=hf.get("pad_token_id") or 0,
    )


def gpt2_config(hf: dict[str, Any], where: Path) -> TransformerConfig:
    """Our decoder's config from a GPT-2 ``config.json`` (``hf``, read from ``where``); what
    our decoder cannot run is refused with a message that names the key."""
    if not hf.get("scale_attn_weights", True) or hf.get("scale_attn_by_inverse_layer_idx"):
        raise WarmstartError(
            f"{where}: non-standard attention scaling (scale_attn_weights / "
            "scale_attn_by_inverse_layer_idx) is not supported"
        )
    if hf.get("add_cross_attention"):
        raise WarmstartError(f"{where}: GPT-2 with cross-attention is not supported")
    if not hf.get("tie_word_embeddings", True):
        raise WarmstartError(
            f"{where}: tie_word_embeddings is false; warmstart's decoder ties its output "
            "projection to the token embedding"
        )
    hidden = hf.get("n_embd", 768)
    vocab_size = hf.get("vocab_size", 50257)
    # GPT-2 has no padding token; padding with end-of-text is the usual practice.
    pad = hf.get("pad_token_id")
    pad = pad if pad is not None else hf.get("eos_token_id")
    if not isinstance(pad, int) or not 0 <= pad < vocab_size:
        pad = 0
    return _config(
        where,
        vocab_size=vocab_size,
        n_layers=hf.get("n_layer", 12),
        hidden=hidden,
        n_heads=hf.get("n_head", 12),
        ffn=hf.get("n_inner") or 4 * hidden,
        max_positions=hf.get("n_positions", 1024),
        dropout=hf.get("resid_pdrop", 0.1),
        attention_dropout=hf.get("attn_pdrop", 0.1),
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        activation=_activation(hf.get("activation_function", "gelu_new"), _GPT2_ACT, "activation_function", where),
        pad_id=pad,
    )


def _activation(name: str, table: dict[str, str], option: str, where: Path) -> str:
    if name not in table:
        raise WarmstartError(
            f"{where}: {option} {name!r} is not supported; use one of {', '.join(sorted(table))}"
        )
    return table[name]


def _config(where: Path, **fields: Any) -> TransformerConfig:
    try:
        return TransformerConfig(**fields)
    except WarmstartError as e:
        raise WarmstartError(f"{where}: {e}") from None


def state_dict_from_hf(
    tensors: dict[str, torch.Tensor],
    *,
    kind: str,
    prefix: str,
    config: TransformerConfig,
    folder: Path,
    source: dict[str, Any],
) -> dict[str, torch.Tensor]:
    """A checkpoint's ``tensors`` in our names, checked against ``config``'s shapes.

    ``prefix`` (``bert.``, ``transformer.``) is stripped where the checkpoint has it. Task heads
    and buffers are left out and listed in ``source["ignored"]``; a missing BERT pooler is
    freshly initialised and listed in ``source["initialised"]``.
    """
    prefixed = any(k.startswith(prefix) for k in tensors)
    base: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for k, v in tensors.items():
        name = k[len(prefix):] if prefixed and k.startswith(prefix) else k
        if name.endswith(_BUFFERS) or not name.startswith(_BASE_ROOTS[kind]):
            ignored.append(k)
            continue
        # Checkpoints converted from TensorFlow name LayerNorm parameters gamma and beta.
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        base[name] = v
    ours: dict[str, torch.Tensor] = {}
    initialised: list[str] = []
    for module, hf_modules, conv1d in _name_table(kind, config.n_layers):
        for p in _params(module):
            names = [f"{m}.{p}" for m in hf_modules]
            missing = [n for n in names if n not in base]
            if missing and module == "pooler":
                ours[f"{module}.{p}"] = _fresh(p, config.hidden)
                initialised.append(f"{module}.{p}")
                continue
            if missing:
                raise WarmstartError(
                    f"{folder}: weights lack {prefix if prefixed else ''}{missing[0]}; "
                    "the checkpoint does not match its config.json"
                )
            parts = [base.pop(n) for n in names]
            if conv1d and p == "weight":
                parts = [t.t() for t in parts]  # Conv1D stores (in, out); Linear wants (out, in)
            joined = parts[0] if len(parts) == 1 else torch.cat(parts)
            ours[f"{module}.{p}"] = joined.float().contiguous()
    if base:
        raise WarmstartError(
            f"{folder}: weights {sorted(base)[:3]} have no counterpart in warmstart's "
            f"{kind}; the checkpoint is not a plain {source['model_type']} model"
        )
    _check_shapes(ours, kind, config, folder)
    source["ignored"] = sorted(ignored)
    source["initialised"] = initialised
    return ours


def _fresh(param: str, hidden: int) -> torch.Tensor:
    """BERT's initialisation for a missing pooler (seeded, so reading is deterministic)."""
    if param == "bias":
        return torch.zeros(hidden)
    return torch.empty(hidden, hidden).normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))


def _check_shapes(ours: dict[str, torch.Tensor], kind: str, config: TransformerConfig, folder: Path) -> None:
    with torch.device("meta"):
        expected = (Encoder(config) if kind == "encoder" else Decoder(config)).state_dict()
    for name, t in expected.items():
        if tuple(ours[name].shape) != tuple(t.shape):
            raise WarmstartError(
                f"{folder}: {name} has shape {tuple(ours[name].shape)} but config.json implies "
                f"{tuple(t.shape)}; the weights do not match the config"
            )


# -- writing: ours to config.json and weights ---------------------------------------------


def bert_hf_config(cfg: TransformerConfig) -> dict[str, Any]:
    """``config.json`` of our encoder as ``BertModel``."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "intermediate_size": cfg.ffn,
        "hidden_act": _ACT_OUT[cfg.activation],
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "max_position_embeddings": cfg.max_positions,
        "type_vocab_size": cfg.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": cfg.layer_norm_eps,
        "pad_token_id": cfg.pad_id,
        "position_embedding_type": "absolute",
    }


def gpt2_hf_config(cfg: TransformerConfig, specials: dict[str, Any]) -> dict[str, Any]:
    """``config.json`` of our decoder as ``GPT2LMHeadModel``; ``specials`` gives the begin
    and end of text ids (:func:`~warmstart.models.hf_tokenizer.special_tokens`)."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_embd": cfg.hidden,
        "n_layer": cfg.n_layers,
        "n_head": cfg.n_heads,
        "n_inner": cfg.ffn,
        "n_positions": cfg.max_positions,
        "activation_function": _ACT_OUT[cfg.activation],
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.attention_dropout,
        "layer_norm_epsilon": cfg.layer_norm_eps,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "pad_token_id": cfg.pad_id,
        "bos_token_id": specials.get("bos_id"),
        "eos_token_id": specials.get("eos_id"),
    }


def state_dict_to_hf(
    ours: dict[str, torch.Tensor], *, kind: str, n_layers: int, prefix: str, pooler: bool = True
) -> dict[str, torch.Tensor]:
    """Our ``kind`` model's state dict in Hugging Face's names, each behind ``prefix`` (``bert.``
    under a task head, ``transformer.`` for GPT-2), on the CPU; without BERT's pooler when
    ``pooler`` is False."""
    tensors: dict[str, torch.Tensor] = {}
    for module, hf_modules, conv1d in _name_table(kind, n_layers):
        if module == "pooler" and not pooler:
            continue
        for p in _params(module):
            parts = ours[f"{module}.{p}"].detach().cpu().chunk(len(hf_modules))
            for m, t in zip(hf_modules, parts, strict=True):
                t = t.t() if conv1d and p == "weight" else t
                # Fresh storage per tensor: safetensors refuses views of one another.
                tensors[f"{prefix}{m}.{p}"] = t.clone().contiguous()
    return tensors
