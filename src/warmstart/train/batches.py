"""The batch contract between the training loop and what it trains.

A batch source hands the loop one global batch per step, already turned into model inputs
and targets (a :class:`Prepared` batch). The loop slices it into micro-batches and
per-process shares by rows, and passes each slice, with the batch's normalisers, to the
module being trained, which returns the slice's share of the loss: the sum of the shares is
the loss of the whole batch, however the batch was split.

Pretraining objectives (:mod:`warmstart.objectives`) and the classifier trainers
(:mod:`warmstart.transfer`) both make such batches; the loop knows nothing else about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class Prepared:
    """A global batch made ready for an objective.

    ``tensors`` all have the batch as their first dimension, so the loop can slice them into
    micro-batches and per-process shares; ``norms`` are counts over the whole global batch.
    """

    tensors: dict[str, torch.Tensor]
    norms: dict[str, float]

    def rows(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Rows ``start:stop`` of every tensor."""
        return {k: v[start:stop] for k, v in self.tensors.items()}

    @property
    def n_rows(self) -> int:
        """The number of rows (sequences, examples) in the batch."""
        return len(next(iter(self.tensors.values())))


class BatchSource(Protocol):
    """Where the loop's batches come from; both methods must be deterministic."""

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        """The prepared global batch of ``step`` and the number of tokens in it."""
        ...

    def valid_batches(self, n: int) -> Sequence[Prepared]:
        """``n`` fixed held-out batches (fewer if there is less held-out data)."""
        ...
