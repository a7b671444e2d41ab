"""Checkpoints of a training run: model, optimizer and progress.

``OUT/checkpoint/`` holds ``state.safetensors`` (model and optimizer tensors), ``state.json``
(step, tokens, elapsed time, optimizer hyperparameters and the run's fingerprint) and
``metrics.jsonl`` (the log up to this point, so a resumed log has no gap and no duplicates).
The folder mechanism (atomic replacement, format version, fingerprint check) is
:mod:`warmstart.checkpoints`. Nothing is pickled.

Randomness needs no saved state: the loop reseeds from (seed, step, rank) every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from warmstart.artifact import CHECKPOINT_DIR, METRICS_FILE, append_metrics, read_metrics
from warmstart.checkpoints import read_checkpoint, write_checkpoint
from warmstart.errors import WarmstartError

_TENSORS = "state.safetensors"
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
    state = {
        "format": FORMAT,
        "step": progress.step,
        "tokens": progress.tokens,
        "elapsed": progress.elapsed,
        "param_groups": groups,
        "fingerprint": fingerprint,
        "best": progress.best,
    }

    def write_files(folder: Path) -> None:
        save_file(tensors, str(folder / _TENSORS))
        append_metrics(folder / METRICS_FILE, progress.history)

    return write_checkpoint(out, state, write_files)


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
    found = read_checkpoint(
        out, format=FORMAT, fingerprint=fingerprint,
        read_files=lambda folder: (load_file(str(folder / _TENSORS)),
                                   read_metrics(folder / METRICS_FILE)),
    )
    if found is None:
        return None
    meta, (tensors, history) = found
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        module.load_state_dict(model_state, strict=True)
    except RuntimeError as e:
        raise WarmstartError(f"{out / CHECKPOINT_DIR}: the checkpoint does not fit the model ({e})") from None
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, index, key = k.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    best_state = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
    return Progress(step=meta["step"], tokens=meta["tokens"], elapsed=meta["elapsed"],
                    history=history, best=meta.get("best", {}), best_state=best_state or None)
