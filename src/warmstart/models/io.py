"""Encoder and decoder artifacts: save ours, load ours or a Hugging Face folder alike, export.

An encoder/decoder artifact is ``model.safetensors`` (our parameter names), ``tokenizer.json``
and ``warmstart.json`` (kind, the model's shape under ``config.model``, how it was made).
``load_pretrained`` also accepts a Hugging Face BERT-family or GPT-2 folder, so ``--init`` and
downstream commands take either. ``export_model`` writes an artifact as a folder that
``transformers`` or ``sentence-transformers`` loads, or as an ONNX graph for onnxruntime;
``import_model`` makes an artifact of ours from a Hugging Face folder. These two are the
``warmstart model export`` and ``model import`` commands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokenizers
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from warmstart.artifact import (
    META_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    building,
    read_meta,
    write_meta,
)
from warmstart.errors import WarmstartError
from warmstart.models.embedding_setup import EMBEDDING_KEY, EmbeddingSetup, read_embedding_setup
from warmstart.models.hf import read_hf_folder
from warmstart.models.transformer import Decoder, Encoder, MaskedLMHead, TransformerConfig
from warmstart.tokenize.subword import load_tokenizer

#: Beside the model, the weights of the objective that trained it (its heads), tagged with the
#: objective's name in the file's metadata; masked-LM pretraining's head is ``head.*``.
HEADS_FILE = "heads.safetensors"


@dataclass
class Pretrained:
    """A model with its tokenizer, where it came from, and (for an encoder made from a
    sentence-transformers model) how it turns a text into one vector."""

    model: Encoder | Decoder
    tokenizer: tokenizers.Tokenizer | None
    kind: str  # "encoder" or "decoder"
    source: dict[str, Any] = field(default_factory=dict)
    embedding: EmbeddingSetup | None = None


def save_model(
    folder: Path,
    model: Encoder | Decoder,
    *,
    tokenizer: tokenizers.Tokenizer,
    config: dict[str, Any],
    parent: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model`` and ``tokenizer`` into artifact ``folder`` (which must exist).

    An encoder keeps the embedding setup (pooling, normalisation) of the ``parent`` it was
    made from, when that is a sentence-transformers folder or an artifact that recorded one.
    """
    kind = "encoder" if isinstance(model, Encoder) else "decoder"
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save(str(folder / TOKENIZER_FILE))
    setup = _inherited_setup(parent) if kind == "encoder" and EMBEDDING_KEY not in config else None
    if setup is not None:
        config = {**config, EMBEDDING_KEY: setup.to_dict()}
    return write_meta(folder, kind=kind, config={"model": model.config.to_dict(), **config},
                      parent=parent, data=data)


def _inherited_setup(parent: str | None) -> EmbeddingSetup | None:
    if not parent or not Path(parent).is_dir():
        return None
    try:
        return read_embedding_setup(parent)
    except WarmstartError:
        return None  # the model is saved all the same; a broken parent only loses its setup


def load_pretrained(path: str | os.PathLike[str], *, kind: str | None = None) -> Pretrained:
    """Load an encoder/decoder artifact of ours or a Hugging Face model folder, in eval mode
    (dropout off; training switches it back on).

    With ``kind``, anything else is refused with a message naming the folder.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{folder}: no such model folder")
    if (folder / META_FILE).exists():
        meta = read_meta(folder)
        found = meta.get("kind")
        if found not in ("encoder", "decoder"):
            raise WarmstartError(f"{folder}: is a {found!r} artifact, not an encoder or decoder")
        try:
            cfg = TransformerConfig.from_dict(meta["config"]["model"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise WarmstartError(f"{folder / META_FILE}: corrupt artifact metadata (config.model: "
                                 f"{type(e).__name__}: {e}); re-create the artifact") from None
        model: Encoder | Decoder = Encoder(cfg) if found == "encoder" else Decoder(cfg)
        try:
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        except (OSError, SafetensorError, RuntimeError) as e:
            raise WarmstartError(f"{folder / WEIGHTS_FILE}: cannot load the model ({e})") from None
        tok_path = folder / TOKENIZER_FILE
        tok = load_tokenizer(tok_path) if tok_path.exists() else None
        loaded = Pretrained(model, tok, found, {"path": str(folder), "format": "warmstart"})
    else:
        hf = read_hf_folder(folder)
        loaded = Pretrained(hf.build(), hf.tokenizer, hf.kind, {**hf.source, "format": "huggingface"})
    if kind is not None and loaded.kind != kind:
        article = {"encoder": "an encoder", "decoder": "a decoder"}
        raise WarmstartError(
            f"{folder}: holds {article[loaded.kind]}, but {article[kind]} is needed here"
        )
    if loaded.kind == "encoder":
        loaded.embedding = read_embedding_setup(folder)
    loaded.model.eval()
    return loaded


def import_model(path: str | os.PathLike[str], *, out: str | os.PathLike[str]) -> Pretrained:
    """Make an encoder or decoder artifact at ``out`` from the Hugging Face BERT-family or
    GPT-2 folder ``path`` (``warmstart model import``); returns the model as loaded.

    The folder must hold its tokenizer (``tokenizer.json`` or ``vocab.txt``).

        >>> import_model("bert-base-uncased", out="bert")          # doctest: +SKIP
    """
    loaded = load_pretrained(path)
    if loaded.tokenizer is None:
        raise WarmstartError(f"{path}: has no tokenizer.json (or vocab.txt); cannot import it")
    with building(out) as folder:
        save_model(folder, loaded.model, tokenizer=loaded.tokenizer,
                   config={"imported_from": loaded.source}, parent=str(Path(path).resolve()))
    return loaded


def read_mlm_head(folder: str | os.PathLike[str], encoder: Encoder) -> MaskedLMHead | None:
    """The head masked-LM pretraining saved beside ``encoder`` in artifact ``folder`` (tied to
    the encoder's token embedding, in eval mode), or None if the folder has none."""
    path = Path(folder) / HEADS_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            made_by = (f.metadata() or {}).get("objective")
        if made_by != "mlm":
            return None
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise WarmstartError(f"{path}: cannot read the heads ({e})") from None
    head = MaskedLMHead(encoder.config, encoder.tok_emb)
    try:
        head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items()
                              if k.startswith("head.")}, strict=True)
    except RuntimeError as e:
        raise WarmstartError(f"{path}: the masked-LM head does not fit the model ({e})") from None
    return head.eval()
