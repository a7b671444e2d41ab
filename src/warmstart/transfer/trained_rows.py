"""Train only the rows of an embedding table that training looks up; the same result, faster.

fastText-style classifiers carry tables far larger than what a few thousand texts use (200,000
hashed n-gram buckets, the pretrained vectors' whole vocabulary), and a dense AdamW step reads
and writes every row of them, with clipping's norm on top: on two cores that was most of a
word-vector classifier's training time. Yet AdamW's step on a row that never had a gradient is
its weight decay alone (both moments stay 0, so the adaptive part is exactly 0): every such row
is its starting value times one running product of ``(1 - lr * weight_decay)`` factors.

:class:`TrainedRows` stands in for an ``nn.Embedding`` during training: the rows that the
training batches look up (known before training starts) are the parameter, plus one extra
row, the *decay row*, started at 1 and never looked up, which the optimizer decays exactly as
it would every unseen row. A row outside the set (a validation text's unseen word) reads its
starting value times the decay row; :meth:`TrainedRows.merged` writes the full table back.
Same optimizer, same learning-rate schedule, same norms for clipping (unseen rows' gradients
are 0): the trained table equals the dense one's, to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class TrainedRows(nn.Module):
    """An embedding table of which only ``rows`` (and row 0, the padding) are trained."""

    def __init__(self, table: nn.Embedding, rows: torch.Tensor) -> None:
        super().__init__()
        if table.padding_idx not in (None, 0):
            raise ValueError("TrainedRows keeps row 0 as the padding row")
        start = table.weight.detach()
        rows = torch.unique(torch.cat([torch.zeros(1, dtype=torch.long), rows.long()]))
        self.n_rows = len(rows)  # the decay row's index in ``weight``
        position = torch.full((table.num_embeddings,), self.n_rows, dtype=torch.long)
        position[rows] = torch.arange(self.n_rows)
        # Not saved with the module: a checkpoint holds the trained rows (``weight``) only.
        self.start: torch.Tensor
        self.rows: torch.Tensor
        self.position: torch.Tensor
        self.register_buffer("start", start, persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("position", position, persistent=False)
        decay_row = torch.ones(1, start.shape[1], dtype=start.dtype, device=start.device)
        self.weight = nn.Parameter(torch.cat([start[rows], decay_row]),
                                   requires_grad=table.weight.requires_grad)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        at = self.position[ids]
        out = F.embedding(at, self.weight, padding_idx=0)
        outside = at == self.n_rows
        if bool(outside.any()):
            if self.training and torch.is_grad_enabled():
                raise RuntimeError("TrainedRows: a training batch looked up a row that was not "
                                   "among the rows given (so it would not be trained)")
            decayed = self.start[ids] * self.weight[-1].detach()
            out = torch.where(outside.unsqueeze(-1), decayed, out)
        return out

    @torch.no_grad()
    def merged(self) -> torch.Tensor:
        """The whole table: the trained rows, and every other row decayed as AdamW would."""
        table = self.start * self.weight[-1]
        table[self.rows] = self.weight[:-1]
        return table


def seen_ids(id_lists: Iterable[Sequence[int]]) -> torch.Tensor:
    """The distinct ids of ``id_lists``, sorted."""
    parts = [np.asarray(ids, dtype=np.int64) for ids in id_lists]
    return torch.from_numpy(np.unique(np.concatenate(parts))) if parts else torch.zeros(0, dtype=torch.long)


@contextmanager
def train_seen_rows(tables: Iterable[tuple[nn.Module, str, torch.Tensor]]) -> Iterator[None]:
    """Swap each ``(owner, attribute, rows)`` trainable embedding for a :class:`TrainedRows`
    of those rows for the block; afterwards the embedding holds the merged table again.

    The parameter keeps its name (``owner.attribute.weight``), so the optimizer's groups,
    gradual unfreezing and the best-weights snapshot treat it as they would the whole table.
    """
    swapped: list[tuple[nn.Module, str, nn.Embedding]] = []
    try:
        for owner, name, rows in tables:
            table = getattr(owner, name)
            if isinstance(table, nn.Embedding) and table.weight.requires_grad:
                setattr(owner, name, TrainedRows(table, rows.to(table.weight.device)))
                swapped.append((owner, name, table))
        yield
    finally:
        for owner, name, table in reversed(swapped):
            stand_in = getattr(owner, name)
            with torch.no_grad():
                table.weight.data = stand_in.merged().to(table.weight.device)
                table.weight.requires_grad_(stand_in.weight.requires_grad)
            setattr(owner, name, table)
