"""Hugging Face model folders: read BERT-family and GPT-2 checkpoints, write ours as theirs.

A Hugging Face model folder holds ``config.json`` beside ``model.safetensors`` (or shards
listed in ``model.safetensors.index.json``) and usually ``tokenizer.json``. Reading one gives
our :class:`~warmstart.models.transformer.TransformerConfig` and a state dict in our parameter
names, which loads with ``strict=True`` into an :class:`Encoder` (``bert``, ``electra``) or a
:class:`Decoder` (``gpt2``). Writing goes the other way, so ``transformers`` loads our models
with ``AutoModel`` / ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` and our tokenizers
with ``AutoTokenizer``; given an :class:`EmbeddingSetup`, the folder also holds the pooling
and normalisation that ``sentence_transformers.SentenceTransformer`` reads.

    >>> hf = read_hf_folder(Path("all-MiniLM-L6-v2"))               # doctest: +SKIP
    >>> enc = Encoder(hf.config); enc.load_state_dict(hf.state_dict)  # doctest: +SKIP
    >>> write_hf_folder(enc, Path("export"), tokenizer=hf.tokenizer)  # doctest: +SKIP

Only safetensors weights are read: pickled ``pytorch_model.bin`` files can run code when
loaded. The name mapping is one table per architecture, used in both directions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokenizers
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warmstart import artifact
from warmstart.artifact import TOKENIZER_FILE, WEIGHTS_FILE  # a Hugging Face folder's names too
from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, MaskedLMHead, TransformerConfig
from warmstart.tokenize.subword import load_tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
MODULES_FILE = "modules.json"  # sentence-transformers: the pipeline after the transformer

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


@dataclass
class HFModel:
    """A Hugging Face checkpoint translated to our names: build ``Encoder(config)`` or
    ``Decoder(config)`` (as ``kind`` says) and ``load_state_dict(state_dict)`` into it."""

    kind: str  # "encoder" (BERT family) or "decoder" (GPT-2)
    config: TransformerConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer: tokenizers.Tokenizer | None
    source: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Encoder | Decoder:
        """Our model with these weights loaded, in eval mode."""
        model: Encoder | Decoder = Encoder(self.config) if self.kind == "encoder" else Decoder(self.config)
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()


# --- the name tables: (our module, [HF modules], HF stores the weight as Conv1D (in, out)) ---


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


# --- reading ---


def read_hf_folder(path: str | os.PathLike[str]) -> HFModel:
    """Read a Hugging Face BERT-family or GPT-2 model folder into our config and names.

    Task heads (``cls.*``, ``lm_head``, classifiers) are skipped and listed in
    ``source["ignored"]``; a BERT checkpoint without a pooler gets a freshly initialised one,
    listed in ``source["initialised"]``.
    """
    folder = Path(path)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise WarmstartError(
            f"{folder}: no {CONFIG_FILE}; expected a Hugging Face model folder with "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{config_path}: not valid JSON ({e})") from None
    model_type = hf.get("model_type")
    if model_type not in MODEL_TYPES:
        raise WarmstartError(
            f"{config_path}: model_type {model_type!r} is not supported; warmstart reads "
            f"BERT-family ({', '.join(t for t, (k, _) in MODEL_TYPES.items() if k == 'encoder')}) "
            "and GPT-2 (gpt2) checkpoints"
        )
    kind, prefix = MODEL_TYPES[model_type]
    config = _bert_config(hf, config_path) if kind == "encoder" else _gpt2_config(hf, config_path)
    tensors = _load_weights(folder)
    source: dict[str, Any] = {
        "path": str(folder),
        "model_type": model_type,
        "architectures": hf.get("architectures") or [],
        "torch_dtype": hf.get("torch_dtype") or hf.get("dtype"),
    }
    state_dict = _to_ours(tensors, kind=kind, prefix=prefix, config=config, folder=folder, source=source)
    return HFModel(kind=kind, config=config, state_dict=state_dict, tokenizer=_read_tokenizer(folder, kind), source=source)


def normalizes_embeddings(path: str | os.PathLike[str]) -> bool:
    """Whether a sentence-transformers folder scales its embeddings to length 1 (its
    ``modules.json`` has a ``Normalize`` module), or an encoder artifact made from one
    recorded that it does; False for a plain model folder."""
    folder = Path(path)
    if (folder / artifact.META_FILE).exists():
        setup = read_embedding_setup(folder)
        return setup is not None and setup.normalize
    return any(str(m.get("type", "")).endswith(".Normalize") for m in _st_modules(folder))


def _bert_config(hf: dict[str, Any], where: Path) -> TransformerConfig:
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


def _gpt2_config(hf: dict[str, Any], where: Path) -> TransformerConfig:
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


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    single, index = folder / WEIGHTS_FILE, folder / WEIGHTS_INDEX_FILE
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise WarmstartError(f"{index}: not a safetensors index with a weight_map ({e})") from None
        files = [folder / name for name in sorted(set(weight_map.values()))]
    elif list(folder.glob("pytorch_model*.bin")):
        raise WarmstartError(
            f"{folder}: has only pickled PyTorch weights (pytorch_model.bin), which warmstart does "
            "not load because unpickling can run arbitrary code; convert the folder to "
            f"safetensors first (in transformers: model.save_pretrained(folder) writes {WEIGHTS_FILE})"
        )
    else:
        raise WarmstartError(
            f"{folder}: no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}; expected a Hugging Face model "
            f"folder with {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        if not f.is_file():
            raise WarmstartError(f"{f}: listed in {WEIGHTS_INDEX_FILE} but missing")
        try:
            tensors.update(load_file(f))
        except (SafetensorError, OSError) as e:
            raise WarmstartError(f"{f}: cannot read safetensors file ({e})") from None
    return tensors


def _to_ours(
    tensors: dict[str, torch.Tensor],
    *,
    kind: str,
    prefix: str,
    config: TransformerConfig,
    folder: Path,
    source: dict[str, Any],
) -> dict[str, torch.Tensor]:
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


def _read_tokenizer(folder: Path, kind: str) -> tokenizers.Tokenizer | None:
    path = folder / TOKENIZER_FILE
    if path.is_file():
        return load_tokenizer(path)
    vocab = folder / "vocab.txt"
    if kind == "encoder" and vocab.is_file():
        return _wordpiece_from_vocab(folder, vocab)
    return None


def _wordpiece_from_vocab(folder: Path, vocab: Path) -> tokenizers.Tokenizer:
    """BERT's tokenizer rebuilt from ``vocab.txt`` (as transformers' BertTokenizerFast does)."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    settings: dict[str, Any] = {}
    if (folder / TOKENIZER_CONFIG_FILE).is_file():
        try:
            settings = json.loads((folder / TOKENIZER_CONFIG_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            settings = {}
    tok = tokenizers.Tokenizer(models.WordPiece.from_file(str(vocab), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),
        lowercase=settings.get("do_lower_case", True),
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls is not None and sep is not None:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
        )
    specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if tok.token_to_id(t) is not None]
    tok.add_special_tokens(specials)
    return tok


# --- writing ---


@dataclass
class SequenceHead:
    """A classification head on BERT's pooled output, as ``BertForSequenceClassification``."""

    weight: torch.Tensor  # (K, C)
    bias: torch.Tensor  # (K,)
    labels: list[str]
    multi_label: bool = False


def write_hf_folder(
    model: Encoder | Decoder, out: str | os.PathLike[str], *, tokenizer: tokenizers.Tokenizer | None,
    head: SequenceHead | None = None, mlm_head: MaskedLMHead | None = None,
    embedding: EmbeddingSetup | None = None,
) -> None:
    """Write ``model`` (and ``tokenizer``) as a Hugging Face folder: an Encoder as ``BertModel``
    (with ``head``: ``BertForSequenceClassification``; with ``mlm_head``, the head masked-LM
    pretraining trained on it: ``BertForMaskedLM``), a Decoder as ``GPT2LMHeadModel``.

    With ``embedding``, the folder is also one ``sentence_transformers.SentenceTransformer``
    loads, whose embeddings are warmstart's under that setup: ``modules.json`` lists the model
    at the top, then Pooling, a Dense tanh layer for BERT's pooler, and Normalize.

    The folder is built beside ``out`` and renamed into place; an existing ``out`` must be
    empty (or a warmstart artifact)."""
    side: dict[str, Any] = {}
    if embedding is not None:
        if head is not None or not isinstance(model, Encoder):
            raise TypeError("sentence embeddings are an Encoder's, without a classification head")
        _check_embedding(embedding)
        if embedding.truncation == "tail":
            side["truncation_side"] = "left"  # [CLS] + the last pieces + [SEP], as ours
    with artifact.building(out) as tmp:
        _write_model_files(tmp, model, tokenizer=tokenizer, head=head, mlm_head=mlm_head,
                           tokenizer_settings=side)
        if embedding is not None and isinstance(model, Encoder):
            _write_sentence_transformers_files(tmp, model, embedding)


def _write_model_files(
    folder: Path, model: Encoder | Decoder, *, tokenizer: tokenizers.Tokenizer | None,
    head: SequenceHead | None = None, mlm_head: MaskedLMHead | None = None,
    tokenizer_settings: dict[str, Any] | None = None,
) -> None:
    if isinstance(model, Encoder):
        kind = "encoder"
    elif isinstance(model, Decoder):
        kind = "decoder"
    else:
        raise TypeError(f"write_hf_folder takes an Encoder or a Decoder, not {type(model).__name__}")
    if (head is not None or mlm_head is not None) and kind != "encoder":
        raise TypeError("a classification or masked-LM head goes on an Encoder")
    if head is not None and mlm_head is not None:
        raise TypeError("give a classification head or a masked-LM head, not both")
    if mlm_head is not None and mlm_head.tied is not model.tok_emb:
        raise TypeError("the masked-LM head must be tied to this encoder's token embedding")
    cfg = model.config
    ours = model.state_dict()
    dtype = ours["tok_emb.weight"].dtype
    prefix = "transformer." if kind == "decoder" else ("" if head is None and mlm_head is None else "bert.")
    tensors: dict[str, torch.Tensor] = {}
    for module, hf_modules, conv1d in _name_table(kind, cfg.n_layers):
        if module == "pooler" and mlm_head is not None:
            continue  # BertForMaskedLM has no pooler (and MLM pretraining never trains ours)
        for p in _params(module):
            parts = ours[f"{module}.{p}"].detach().cpu().chunk(len(hf_modules))
            for m, t in zip(hf_modules, parts, strict=True):
                t = t.t() if conv1d and p == "weight" else t
                # Fresh storage per tensor: safetensors refuses views of one another.
                tensors[f"{prefix}{m}.{p}"] = t.clone().contiguous()
    tokenizer = framed_tokenizer(tokenizer, kind) if tokenizer is not None else None
    specials = _special_tokens(tokenizer, kind)
    hf_config = _bert_hf_config(cfg) if kind == "encoder" else _gpt2_hf_config(cfg, specials)
    if head is not None:
        tensors["classifier.weight"] = head.weight.detach().cpu().clone().contiguous()
        tensors["classifier.bias"] = head.bias.detach().cpu().clone().contiguous()
        hf_config.update(
            architectures=["BertForSequenceClassification"],
            id2label={str(i): name for i, name in enumerate(head.labels)},
            label2id={name: i for i, name in enumerate(head.labels)},
            problem_type=("multi_label_classification" if head.multi_label
                          else "single_label_classification"),
        )
    if mlm_head is not None:
        # The decoder's weight is the word embedding (tie_word_embeddings), as transformers
        # saves BertForMaskedLM; its bias is cls.predictions.bias.
        for name, tensor in mlm_head.state_dict().items():
            tensors[_MLM_HEAD_NAMES[name]] = tensor.detach().cpu().clone().contiguous()
        hf_config.update(architectures=["BertForMaskedLM"], tie_word_embeddings=True)
    hf_config["torch_dtype"] = str(dtype).removeprefix("torch.")
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    artifact.write_json_atomic(folder / CONFIG_FILE, hf_config)
    if tokenizer is not None:
        tokenizer.save(str(folder / TOKENIZER_FILE))
        artifact.write_json_atomic(
            folder / TOKENIZER_CONFIG_FILE,
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": cfg.max_positions,
                **{k: v for k, v in specials.items() if k.endswith("_token")},
                **(tokenizer_settings or {}),
            },
        )


# Our MaskedLMHead's parameters against BertForMaskedLM's.
_MLM_HEAD_NAMES = {
    "dense.weight": "cls.predictions.transform.dense.weight",
    "dense.bias": "cls.predictions.transform.dense.bias",
    "ln.weight": "cls.predictions.transform.LayerNorm.weight",
    "ln.bias": "cls.predictions.transform.LayerNorm.bias",
    "bias": "cls.predictions.bias",
}

# Post-processors that add special tokens around a text; others (ByteLevel) only fix offsets.
_FRAMING_PROCESSORS = ("TemplateProcessing", "BertProcessing", "RobertaProcessing")


def framed_tokenizer(tokenizer: tokenizers.Tokenizer, kind: str) -> tokenizers.Tokenizer:
    """A copy of ``tokenizer`` that frames a text as the model read its texts in training:
    for an encoder ``[CLS] text [SEP]`` (a pair as BERT's), for a decoder the bare pieces.

    A decoder is trained on documents each followed by the end-of-text token, with nothing
    before them; a prompt that ended in that token would make it start a new document. Fixed
    padding and truncation are dropped: the library that loads the folder sets its own.
    """
    spec = json.loads(tokenizer.to_str())
    spec["padding"] = None
    spec["truncation"] = None
    post = spec.get("post_processor")
    steps = (post.get("processors", []) if post and post.get("type") == "Sequence"
             else [post] if post else [])
    frames = [p for p in steps if p.get("type") in _FRAMING_PROCESSORS]
    keep = [p for p in steps if p.get("type") not in _FRAMING_PROCESSORS]
    if kind == "encoder":
        cls, sep = (_first_token(tokenizer, names) for names in (("[CLS]", "<s>"), ("[SEP]", "</s>")))
        if frames:
            keep += frames  # the model's own framing, as it came
        elif cls is not None and sep is not None:
            keep.append(_bert_template(tokenizer, cls, sep))
    spec["post_processor"] = (None if not keep else keep[0] if len(keep) == 1
                              else {"type": "Sequence", "processors": keep})
    return tokenizers.Tokenizer.from_str(json.dumps(spec))


def _first_token(tokenizer: tokenizers.Tokenizer, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if tokenizer.token_to_id(n) is not None), None)


def _bert_template(tokenizer: tokenizers.Tokenizer, cls: str, sep: str) -> dict[str, Any]:
    """``[CLS] $A [SEP]`` (pair: ``... $B [SEP]``) as post-processor JSON."""
    from tokenizers import processors

    probe = tokenizers.Tokenizer.from_str(tokenizer.to_str())
    probe.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )
    template: dict[str, Any] = json.loads(probe.to_str())["post_processor"]
    return template


def _bert_hf_config(cfg: TransformerConfig) -> dict[str, Any]:
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


def _gpt2_hf_config(cfg: TransformerConfig, specials: dict[str, Any]) -> dict[str, Any]:
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


# Tokenizer-config keys for the special tokens a tokenizer may have; the first match wins.
_SPECIALS: dict[str, tuple[str, ...]] = {
    "pad_token": ("[PAD]", "<pad>"),
    "unk_token": ("[UNK]", "<unk>"),
    "cls_token": ("[CLS]", "<s>"),
    "sep_token": ("[SEP]", "</s>"),
    "mask_token": ("[MASK]", "<mask>"),
}
# A decoder's begin and end of text: one token, as GPT-2's <|endoftext|>. A decoder is
# trained on documents each followed by the end-of-text token, so that token is what comes
# before a document: generation from nothing starts after it.
_DECODER_SPECIALS: dict[str, tuple[str, ...]] = {
    "bos_token": ("[SEP]", "</s>", "<|endoftext|>"),
    "eos_token": ("[SEP]", "</s>", "<|endoftext|>"),
}


def _special_tokens(tokenizer: tokenizers.Tokenizer | None, kind: str) -> dict[str, Any]:
    """``{"pad_token": "[PAD]", ...}`` for the special tokens ``tokenizer`` has; for a decoder
    also its begin/end tokens and their ids (``bos_id`` / ``eos_id``, for its config)."""
    if tokenizer is None:
        return {}
    table = {**_SPECIALS, **(_DECODER_SPECIALS if kind == "decoder" else {})}
    found: dict[str, Any] = {}
    for key, candidates in table.items():
        for token in candidates:
            if tokenizer.token_to_id(token) is not None:
                found[key] = token
                break
    for key in ("bos", "eos"):
        if f"{key}_token" in found:
            found[f"{key}_id"] = tokenizer.token_to_id(found[f"{key}_token"])
    return found


# --- sentence-transformers ---


@dataclass(frozen=True)
class EmbeddingSetup:
    """How an encoder turns a text into one vector, as a sentence-transformers pipeline does:
    the token states pooled (``mean``, ``cls``, or ``pooler``: BERT's tanh layer on [CLS]),
    then scaled to length 1 if ``normalize``; a text is cut to ``max_len`` tokens, keeping
    its ``head`` or its ``tail``.

    An encoder imported from a sentence-transformers folder records its setup in
    ``warmstart.json`` (``config.embedding``), and the encoders made from it keep it.
    """

    pooling: str = "mean"
    normalize: bool = False
    max_len: int = 256
    truncation: str = "head"

    def to_dict(self) -> dict[str, Any]:
        return {"pooling": self.pooling, "normalize": self.normalize, "max_len": self.max_len,
                "truncation": self.truncation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingSetup:
        return cls(pooling=str(d.get("pooling", "mean")), normalize=bool(d.get("normalize", False)),
                   max_len=int(d.get("max_len", 256)), truncation=str(d.get("truncation", "head")))


#: Where an encoder artifact records its EmbeddingSetup: warmstart.json's config[EMBEDDING_KEY].
EMBEDDING_KEY = "embedding"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"
_ST_POOLING = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}


def read_embedding_setup(path: str | os.PathLike[str]) -> EmbeddingSetup | None:
    """The embedding setup of a warmstart encoder artifact (as recorded) or of a
    sentence-transformers folder (its ``modules.json``); None when there is none, or when
    the folder's pipeline is not one warmstart's encoder can run (max pooling, a Dense layer)."""
    folder = Path(path)
    if (folder / artifact.META_FILE).exists():
        recorded = artifact.read_meta(folder).get("config", {}).get(EMBEDDING_KEY)
        return EmbeddingSetup.from_dict(recorded) if isinstance(recorded, dict) else None
    modules = _st_modules(folder)
    if not modules:
        return None
    types = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if types not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    if modules[0].get("path", "") not in ("", "."):
        return None  # the transformer in a subfolder: not a folder read_hf_folder reads
    pooling_config = _read_json(folder / str(modules[1].get("path", "")) / CONFIG_FILE)
    modes = _pooling_modes(pooling_config)
    if len(modes) != 1 or modes[0] not in _ST_POOLING:
        return None
    settings = (_read_json(folder / SENTENCE_CONFIG_FILE)
                if (folder / SENTENCE_CONFIG_FILE).is_file() else {})
    return EmbeddingSetup(pooling=modes[0], normalize=len(types) == 3,
                          max_len=int(settings.get("max_seq_length") or 256))


def _st_modules(folder: Path) -> list[dict[str, Any]]:
    path = folder / MODULES_FILE
    if not path.is_file():
        return []
    listed = _read_json(path)
    if not isinstance(listed, list) or not all(isinstance(m, dict) for m in listed):
        raise WarmstartError(f"{path}: expected a list of modules")
    return listed


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarmstartError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{path}: not valid JSON ({e})") from None


def _pooling_modes(config: dict[str, Any]) -> list[str]:
    """A Pooling module's modes, from its current (``pooling_mode``) or older config keys."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        return [mode] if isinstance(mode, str) else list(mode)
    return [k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
            for k, on in config.items() if k.startswith("pooling_mode_") and on]


def _check_embedding(setup: EmbeddingSetup) -> None:
    if setup.pooling not in ("mean", "cls", "pooler"):
        raise WarmstartError(f"--pooling {setup.pooling}: use mean, cls or pooler")
    if setup.truncation not in ("head", "tail"):
        raise WarmstartError(
            f"--format sentence-transformers: the encoder cuts long texts by --truncation "
            f"{setup.truncation}, which sentence-transformers cannot (it keeps the head or the "
            "tail of a text); train with --truncation head or tail to export it")


def _write_sentence_transformers_files(folder: Path, encoder: Encoder, setup: EmbeddingSetup) -> None:
    """The modules that follow the transformer, in the layout sentence-transformers has read
    since its version 2 (and still reads)."""
    hidden = encoder.config.hidden
    modules = [("", "sentence_transformers.models.Transformer"),
               ("1_Pooling", "sentence_transformers.models.Pooling")]
    if setup.pooling == "pooler":
        modules.append(("2_Dense", "sentence_transformers.models.Dense"))
    if setup.normalize:
        modules.append((f"{len(modules)}_Normalize", "sentence_transformers.models.Normalize"))
    artifact.write_json_atomic(folder / MODULES_FILE, [
        {"idx": i, "name": str(i), "path": path, "type": kind} for i, (path, kind) in enumerate(modules)])
    artifact.write_json_atomic(folder / SENTENCE_CONFIG_FILE, {
        "max_seq_length": min(setup.max_len, encoder.config.max_positions), "do_lower_case": False})
    artifact.write_json_atomic(folder / "config_sentence_transformers.json", {
        "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    (folder / "1_Pooling").mkdir()
    pooled = "cls" if setup.pooling == "pooler" else setup.pooling  # the pooler reads [CLS]
    artifact.write_json_atomic(folder / "1_Pooling" / CONFIG_FILE, {
        "word_embedding_dimension": hidden,
        **{key: mode == pooled for mode, key in _ST_POOLING.items()},
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    if setup.pooling == "pooler":
        (folder / "2_Dense").mkdir()
        artifact.write_json_atomic(folder / "2_Dense" / CONFIG_FILE, {
            "in_features": hidden, "out_features": hidden, "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh"})
        save_file({"linear.weight": encoder.pooler.weight.detach().cpu().clone().contiguous(),
                   "linear.bias": encoder.pooler.bias.detach().cpu().clone().contiguous()},
                  str(folder / "2_Dense" / WEIGHTS_FILE), metadata={"format": "pt"})
    if setup.normalize:
        (folder / modules[-1][0]).mkdir()
