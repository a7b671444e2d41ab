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
loaded. The names of files, config keys and weights are mapped in :mod:`.hf_mapping` (one
table per architecture, used in both directions), the tokenizer is read and framed in
:mod:`.hf_tokenizer`, and the sentence-transformers pipeline is in :mod:`.embedding_setup`.
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
from warmstart.models.embedding_setup import (
    EmbeddingSetup,
    check_embedding,
    write_sentence_transformers_files,
)
from warmstart.models.hf_mapping import (
    CONFIG_FILE,
    MLM_HEAD_NAMES,
    MODEL_TYPES,
    TOKENIZER_CONFIG_FILE,
    WEIGHTS_INDEX_FILE,
    bert_config,
    bert_hf_config,
    gpt2_config,
    gpt2_hf_config,
    state_dict_from_hf,
    state_dict_to_hf,
)
from warmstart.models.hf_tokenizer import framed_tokenizer, read_tokenizer, special_tokens
from warmstart.models.transformer import Decoder, Encoder, MaskedLMHead, TransformerConfig


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


# -- reading ---------------------------------------------------------------------------------


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
    config = bert_config(hf, config_path) if kind == "encoder" else gpt2_config(hf, config_path)
    tensors = _load_weights(folder)
    source: dict[str, Any] = {
        "path": str(folder),
        "model_type": model_type,
        "architectures": hf.get("architectures") or [],
        "torch_dtype": hf.get("torch_dtype") or hf.get("dtype"),
    }
    state_dict = state_dict_from_hf(tensors, kind=kind, prefix=prefix, config=config, folder=folder, source=source)
    return HFModel(kind=kind, config=config, state_dict=state_dict, tokenizer=read_tokenizer(folder, kind), source=source)


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


# -- writing ---------------------------------------------------------------------------------


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
        check_embedding(embedding)
        if embedding.truncation == "tail":
            side["truncation_side"] = "left"  # [CLS] + the last pieces + [SEP], as ours
    with artifact.building(out) as tmp:
        _write_model_files(tmp, model, tokenizer=tokenizer, head=head, mlm_head=mlm_head,
                           tokenizer_settings=side)
        if embedding is not None and isinstance(model, Encoder):
            write_sentence_transformers_files(tmp, model, embedding)


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
    # BertForMaskedLM has no pooler (and MLM pretraining never trains ours).
    tensors = state_dict_to_hf(ours, kind=kind, n_layers=cfg.n_layers, prefix=prefix,
                               pooler=mlm_head is None)
    tokenizer = framed_tokenizer(tokenizer, kind) if tokenizer is not None else None
    specials = special_tokens(tokenizer, kind)
    hf_config = bert_hf_config(cfg) if kind == "encoder" else gpt2_hf_config(cfg, specials)
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
            tensors[MLM_HEAD_NAMES[name]] = tensor.detach().cpu().clone().contiguous()
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
