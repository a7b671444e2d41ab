"""Checkpoints of a training run: model, optimizer and progress, written atomically.

``OUT/checkpoint/`` holds ``state.safetensors`` (model and optimizer tensors), ``state.json``
(step, tokens, elapsed time, optimizer hyperparameters and the run's fingerprint) and
``metrics.jsonl`` (the log up to this point, so a resumed log has no gap and no duplicates).
The folder is built under a temporary name and renamed into place. Nothing is pickled.

Randomness needs no saved state: the loop reseeds from (seed, step, rank) every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warmstart.artifact import CHECKPOINT_DIR, staged_dir
from warmstart.errors import WarmstartError

_STATE = "state.json"
_TENSORS = "state.safetensors"
_METRICS = "metrics.jsonl"
FORMAT = "warmstart-train-checkpoint/1"


@dataclass
class Progress:
    """Where a run stands."""

    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The best validation so far when the loop keeps the best weights: value, step, and how
    #: many validations since have not beaten it; ``best_state`` holds those weights.
    best: dict[str, Any] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None


def save_checkpoint(
    out: Path,
    *,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    fingerprint: dict[str, Any],
) -> Path:
    """Write the checkpoint of ``module``/``optimizer`` at ``progress`` into ``out/checkpoint``."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    opt_state = optimizer.state_dict()
    for index, state in opt_state["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for k, v in (progress.best_state or {}).items():
        tensors[f"best.{k}"] = v.contiguous()
    groups = [{k: v for k, v in g.items()} for g in opt_state["param_groups"]]
    meta = {
        "format": FORMAT,
        "step": progress.step,
        "tokens": progress.tokens,
        "elapsed": progress.elapsed,
        "param_groups": groups,
        "fingerprint": fingerprint,
        "best": progress.best,
    }
    with staged_dir(out / CHECKPOINT_DIR) as tmp:
        save_file(tensors, str(tmp / _TENSORS))
        (tmp / _STATE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        lines = [json.dumps(r) for r in progress.history]
        (tmp / _METRICS).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out / CHECKPOINT_DIR


def load_checkpoint(
    out: Path,
    *,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    fingerprint: dict[str, Any],
) -> Progress | None:
    """Restore the run saved in ``out/checkpoint`` into ``module``/``optimizer``, if any.

    A checkpoint made by a different configuration, tokenizer or corpus is refused, naming
    what differs; a damaged one is refused, saying how to start over.
    """
    folder = out / CHECKPOINT_DIR
    if not (folder / _STATE).exists():
        return None
    try:
        meta = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / _TENSORS))
    except (OSError, ValueError, SafetensorError) as e:
        raise WarmstartError(
            f"{folder}: the checkpoint is damaged ({e}); delete that folder to start over"
        ) from None
    if meta.get("format") != FORMAT:
        raise WarmstartError(f"{folder}: not a training checkpoint of this version of warmstart")
    saved = meta.get("fingerprint", {})
    if saved != fingerprint:
        raise WarmstartError(
            f"{folder}: this checkpoint was made by a different run "
            f"({describe_difference(saved, fingerprint)}); use the settings it was made with, "
            "or another --out, or delete the checkpoint folder to start over"
        )
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        module.load_state_dict(model_state, strict=True)
    except RuntimeError as e:
        raise WarmstartError(f"{folder}: the checkpoint does not fit the model ({e})") from None
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, index, key = k.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    history = []
    if (folder / _METRICS).exists():
        history = [json.loads(line) for line in (folder / _METRICS).read_text().splitlines() if line]
    best_state = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
    return Progress(step=meta["step"], tokens=meta["tokens"], elapsed=meta["elapsed"],
                    history=history, best=meta.get("best", {}), best_state=best_state or None)


def describe_difference(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> str:
    """A short account of the keys on which two fingerprints differ."""
    parts = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            parts.append(describe_difference(a, b, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}: checkpoint {a!r}, now {b!r}")
    return "; ".join(p for p in parts if p)
