"""Checkpoint folders: the resumable state of an unfinished run, inside its artifact folder.

``OUT/checkpoint/`` holds ``state.json`` (the trainer's format version, the fingerprint of the
run and where it stands) beside the files each trainer adds (its tensors). The folder is
built under a temporary name and renamed into place, so a crash while saving leaves the
previous checkpoint intact. A checkpoint is resumed only by a run with the same fingerprint
(settings and data); another run is refused with one message that says what differs.

The word-vector trainer (:mod:`warmstart.vectors.checkpoint`) and the training loop
(:mod:`warmstart.train.checkpoint`) keep only what is their own: which tensors, which state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError

from warmstart.artifact import CHECKPOINT_DIR, staged_dir
from warmstart.errors import WarmstartError

STATE_FILE = "state.json"

Files = TypeVar("Files")


def write_checkpoint(out: Path, state: dict[str, Any], write_files: Callable[[Path], None]) -> Path:
    """Replace ``out/checkpoint`` by a folder holding ``state`` as ``state.json`` and what
    ``write_files(folder)`` writes there; return the checkpoint folder.

    ``state`` carries the trainer's ``format`` and the run's ``fingerprint``.
    """
    with staged_dir(out / CHECKPOINT_DIR) as tmp:
        write_files(tmp)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    return out / CHECKPOINT_DIR


def read_checkpoint(
    out: Path, *, format: str, fingerprint: dict[str, Any], read_files: Callable[[Path], Files],
) -> tuple[dict[str, Any], Files] | None:
    """The state saved in ``out/checkpoint`` and what ``read_files(folder)`` reads from it, or
    None when there is no checkpoint.

    A damaged checkpoint, one of another ``format`` and one made by a run whose fingerprint
    differs from ``fingerprint`` are refused, saying what differs and how to start over.
    """
    folder = out / CHECKPOINT_DIR
    if not (folder / STATE_FILE).exists():
        return None
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        files = read_files(folder)
    except (OSError, ValueError, SafetensorError) as e:
        raise WarmstartError(
            f"{folder}: the checkpoint is damaged ({e}); delete that folder to start over"
        ) from None
    if not isinstance(state, dict) or state.get("format") != format:
        raise WarmstartError(
            f"{folder}: not a checkpoint this version of warmstart resumes (it reads {format!r}); "
            "delete that folder to start over"
        )
    saved = state.get("fingerprint", {})
    if saved != fingerprint:
        raise WarmstartError(
            f"{folder}: this checkpoint was made by a different run "
            f"({describe_difference(saved, fingerprint)}); use the settings it was made with, "
            "or another --out, or delete the checkpoint folder to start over"
        )
    return state, files


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
