"""How an encoder turns a text into one vector (:class:`EmbeddingSetup`), and that setup as a
sentence-transformers pipeline: read from a folder's ``modules.json`` and written beside a
Hugging Face model, so that ``SentenceTransformer`` gives warmstart's embeddings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from warmstart import artifact
from warmstart.artifact import WEIGHTS_FILE
from warmstart.errors import WarmstartError
from warmstart.models.hf_mapping import (
    CONFIG_FILE,
    MODULES_FILE,
    SENTENCE_CONFIG_FILE,
)
from warmstart.models.transformer import Encoder


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
        """The setup as ``warmstart.json`` records it."""
        return {"pooling": self.pooling, "normalize": self.normalize, "max_len": self.max_len,
                "truncation": self.truncation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingSetup:
        """The setup recorded as ``d`` (missing keys take their defaults)."""
        return cls(pooling=str(d.get("pooling", "mean")), normalize=bool(d.get("normalize", False)),
                   max_len=int(d.get("max_len", 256)), truncation=str(d.get("truncation", "head")))


#: Where an encoder artifact records its EmbeddingSetup: warmstart.json's config[EMBEDDING_KEY].
EMBEDDING_KEY = "embedding"
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


def normalizes_embeddings(path: str | os.PathLike[str]) -> bool:
    """Whether a sentence-transformers folder scales its embeddings to length 1 (its
    ``modules.json`` has a ``Normalize`` module), or an encoder artifact made from one
    recorded that it does; False for a plain model folder."""
    folder = Path(path)
    if (folder / artifact.META_FILE).exists():
        setup = read_embedding_setup(folder)
        return setup is not None and setup.normalize
    return any(str(m.get("type", "")).endswith(".Normalize") for m in _st_modules(folder))


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


def check_embedding(setup: EmbeddingSetup) -> None:
    """Refuse a setup that a sentence-transformers folder cannot express."""
    if setup.pooling not in ("mean", "cls", "pooler"):
        raise WarmstartError(f"--pooling {setup.pooling}: use mean, cls or pooler")
    if setup.truncation not in ("head", "tail"):
        raise WarmstartError(
            f"--format sentence-transformers: the encoder cuts long texts by --truncation "
            f"{setup.truncation}, which sentence-transformers cannot (it keeps the head or the "
            "tail of a text); train with --truncation head or tail to export it")


def write_sentence_transformers_files(folder: Path, encoder: Encoder, setup: EmbeddingSetup) -> None:
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
