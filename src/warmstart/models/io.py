"""Encoder and decoder artifacts: save ours, and load ours or a Hugging Face folder alike.

An encoder/decoder artifact is ``model.safetensors`` (our parameter names), ``tokenizer.json``
and ``warmstart.json`` (kind, the model's shape under ``config.model``, how it was made).
``load_pretrained`` also accepts a Hugging Face BERT-family or GPT-2 folder, so ``--init`` and
downstream commands take either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokenizers
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warmstart.artifact import META_FILE, read_meta, write_meta
from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class Pretrained:
    """A model with its tokenizer and where it came from."""

    model: Encoder | Decoder
    tokenizer: tokenizers.Tokenizer | None
    kind: str  # "encoder" or "decoder"
    source: dict[str, Any] = field(default_factory=dict)


def save_model(
    folder: Path,
    model: Encoder | Decoder,
    *,
    tokenizer: tokenizers.Tokenizer,
    config: dict[str, Any],
    parent: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model`` and ``tokenizer`` into artifact ``folder`` (which must exist)."""
    kind = "encoder" if isinstance(model, Encoder) else "decoder"
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save(str(folder / TOKENIZER_FILE))
    return write_meta(folder, kind=kind, config={"model": model.config.to_dict(), **config},
                      parent=parent, data=data)


def load_pretrained(path: str | os.PathLike[str], *, kind: str | None = None) -> Pretrained:
    """Load an encoder/decoder artifact of ours or a Hugging Face model folder.

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
        cfg = TransformerConfig.from_dict(meta["config"]["model"])
        model: Encoder | Decoder = Encoder(cfg) if found == "encoder" else Decoder(cfg)
        try:
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        except (OSError, SafetensorError, RuntimeError) as e:
            raise WarmstartError(f"{folder / WEIGHTS_FILE}: cannot load the model ({e})") from None
        tok_path = folder / TOKENIZER_FILE
        tok = tokenizers.Tokenizer.from_file(str(tok_path)) if tok_path.exists() else None
        loaded = Pretrained(model, tok, found, {"path": str(folder), "format": "warmstart"})
    else:
        from warmstart.models.hf import read_hf_folder

        hf = read_hf_folder(folder)
        loaded = Pretrained(hf.build(), hf.tokenizer, hf.kind, {**hf.source, "format": "huggingface"})
    if kind is not None and loaded.kind != kind:
        article = {"encoder": "an encoder", "decoder": "a decoder"}
        raise WarmstartError(
            f"{folder}: holds {article[loaded.kind]}, but {article[kind]} is needed here"
        )
    loaded.model.train()
    return loaded
