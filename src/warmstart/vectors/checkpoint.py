"""Checkpoints of a word-vector run: save where it stands, continue it exactly.

A checkpoint lives in ``OUT/checkpoint/`` while a run is unfinished: ``state.json`` (progress
and a fingerprint of settings, data and vocabulary) and ``tensors.safetensors`` (the matrices).
Re-running the same command finds it and continues; a checkpoint made with other settings or
data is refused with a message that says which differ. The folder mechanism (atomic
replacement, format version, fingerprint check) is :mod:`warmstart.checkpoints`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from warmstart.checkpoints import read_checkpoint, write_checkpoint

FORMAT = "warmstart-vectors-checkpoint/1"
_TENSORS = "tensors.safetensors"
_ARRAYS = ("syn0", "syn1neg", "ngrams")


@dataclass
class EpochReport:
    """What one epoch did: its mean loss per prediction and its speed."""

    epoch: int
    loss: float
    predictions: int
    words: int  # in-vocabulary words before subsampling
    effective_words: int  # after subsampling
    seconds: float

    @property
    def words_per_second(self) -> float:
        return self.words / max(self.seconds, 1e-9)


@dataclass
class RunState:
    """Where a run stands: enough to continue it exactly where it stopped."""

    epoch: int = 0  # epochs finished
    chunk: int = 0  # chunks of the stream finished in the current epoch
    done: int = 0  # stream positions trained over the whole run (drives the learning rate)
    loss: float = 0.0  # the current epoch so far
    predictions: int = 0
    words: int = 0
    effective_words: int = 0
    seconds: float = 0.0
    reports: list[EpochReport] = field(default_factory=list)

    def close_epoch(self) -> EpochReport:
        report = EpochReport(self.epoch + 1, self.loss / max(self.predictions, 1), self.predictions,
                             self.words, self.effective_words, self.seconds)
        self.reports.append(report)
        self.epoch += 1
        self.chunk = 0
        self.loss, self.predictions, self.words, self.effective_words, self.seconds = 0.0, 0, 0, 0, 0.0
        return report


def fingerprint(config: dict[str, Any], data: dict[str, Any] | None, words: list[str],
                counts: np.ndarray, n_stream: int) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: settings, data and vocabulary."""
    h = hashlib.sha256("\n".join(words).encode("utf-8"))
    h.update(np.ascontiguousarray(counts, dtype=np.int64).tobytes())
    settings = {k: v for k, v in config.items() if k != "workers"}  # threads do not change the run
    return {"config": settings, "data": (data or {}).get("fingerprint"), "vocab": h.hexdigest()[:16],
            "stream": n_stream}


def save_checkpoint(out: Path, arrays: dict[str, np.ndarray | None], state: RunState,
                    fp: dict[str, Any]) -> Path:
    """Atomically replace ``out/checkpoint`` with the current matrices and state."""
    return write_checkpoint(
        out, {"format": FORMAT, "fingerprint": fp, "state": asdict(state)},
        lambda folder: save_file({k: v for k, v in arrays.items() if v is not None},
                                 str(folder / _TENSORS)),
    )


def load_checkpoint(out: Path, arrays: dict[str, np.ndarray | None], fp: dict[str, Any]) -> RunState | None:
    """Copy a matching checkpoint's matrices into ``arrays`` and return its state (None if none)."""
    found = read_checkpoint(out, format=FORMAT, fingerprint=fp,
                            read_files=lambda folder: load_file(str(folder / _TENSORS)))
    if found is None:
        return None
    saved, tensors = found
    for name in _ARRAYS:
        if arrays.get(name) is not None:
            arrays[name][...] = tensors[name]  # type: ignore[index]
    raw = saved["state"]
    reports = [EpochReport(**r) for r in raw.pop("reports")]
    return RunState(**raw, reports=reports)
