"""Plots made at the end of a run: a person would rather look at a loss curve than read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_losses(history: list[dict[str, Any]], path: Path, *, title: str) -> Path | None:
    """Training and validation loss against tokens seen, as a PNG at ``path``."""
    train = [(r["tokens"], r["loss"]) for r in history if "loss" in r]
    valid = [(r["tokens"], r["valid_loss"]) for r in history if "valid_loss" in r]
    if not train and not valid:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1.0, alpha=0.8)
    if valid:
        ax.plot(*zip(*valid, strict=True), label="validation", marker="o", markersize=3)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
