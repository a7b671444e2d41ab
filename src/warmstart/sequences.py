"""What pretraining samples: rows cut from token shards, and the batches made of them.

A split of a tokenized corpus (:class:`~warmstart.shards.TokenShards`) is viewed as rows of
token ids: :class:`PackedSequences` lays the documents end to end and cuts fixed-length rows
(MLM, ELECTRA, CLM); :class:`DocumentSequences` gives one row per document (the denoising
autoencoder). :func:`rows_for_step` says which rows a training step reads, from the seed and
the step alone, so a resumed run continues exactly; :class:`PretrainBatches` hands the
training loop those rows, prepared by the objective.

    >>> train, valid = build_shards(corpus, tok, cache_dir="cache")           # doctest: +SKIP
    >>> rows = PackedSequences(train, seq_len=128, bos_id=2, eos_id=3)        # doctest: +SKIP
    >>> rows.batch(rows_for_step(step, 32, len(rows), seed=0)).shape          # doctest: +SKIP
    (32, 128)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from warmstart.errors import WarmstartError
from warmstart.objectives import Objective
from warmstart.seeds import mix_seed
from warmstart.shards import TokenShards, checked_index
from warmstart.train.batches import Prepared


def _checked_rows(rows: np.ndarray, n: int) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise TypeError(f"rows must be a 1-d integer array, got shape {rows.shape} {rows.dtype}")
    rows = rows.astype(np.int64, copy=False)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for {n} rows")
    return rows


class PackedSequences:
    """Fixed-length rows cut from a split's documents laid end to end (MLM, ELECTRA, CLM).

    The documents are concatenated with ``eos_id`` after each (``sep_between_docs=False``:
    nothing between them) and cut into consecutive chunks of ``seq_len`` tokens, or of
    ``seq_len - 1`` tokens behind ``bos_id`` when it is given (BERT style: ``[CLS]`` chunk,
    with ``[SEP]`` as ``eos_id``; GPT style: ``bos_id=None``). The last incomplete chunk is
    dropped. Rows are computed from the document offsets; only their ids are read from disk.

        >>> rows = PackedSequences(train, seq_len=128, bos_id=2, eos_id=3)  # doctest: +SKIP
        >>> rows.batch(np.array([0, 5])).shape                              # doctest: +SKIP
        (2, 128)
    """

    def __init__(
        self,
        shards: TokenShards,
        *,
        seq_len: int,
        bos_id: int | None,
        eos_id: int,
        sep_between_docs: bool = True,
    ) -> None:
        self.shards = shards
        self.seq_len = seq_len
        self.bos_id = bos_id
        self.eos_id = eos_id
        self._n_bos = 0 if bos_id is None else 1
        if not isinstance(seq_len, int) or seq_len - self._n_bos < 1:
            raise WarmstartError(
                f"seq_len (--seq-len) {seq_len!r}: must be an integer of at least "
                f"{self._n_bos + 1}; 128 or 512 is typical"
            )
        self._chunk = seq_len - self._n_bos
        self._sep = 1 if sep_between_docs else 0
        #: Packed-stream position just past each document and its separator.
        self._ends = np.cumsum(shards.lengths + self._sep)
        total = int(self._ends[-1]) if len(self._ends) else 0
        self._n_rows = total // self._chunk

    def __len__(self) -> int:
        return self._n_rows

    def __getitem__(self, i: int) -> np.ndarray:
        return self.batch(np.array([checked_index(i, self._n_rows, "row")]))[0]

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """The rows at indices ``rows``, as a ``(len(rows), seq_len)`` int64 array."""
        rows = _checked_rows(rows, self._n_rows)
        pos = rows[:, None] * self._chunk + np.arange(self._chunk)  # (B, C) packed positions
        doc = np.searchsorted(self._ends, pos, side="right")  # (B, C) document holding each
        lengths = self.shards.lengths[doc]
        offset = pos - (self._ends[doc] - lengths - self._sep)  # (B, C) within that document
        is_token = offset < lengths  # else the separator
        out = np.full((len(rows), self.seq_len), self.eos_id, dtype=np.int64)
        body = out[:, self._n_bos :]  # a view: (B, C)
        body[is_token] = self.shards.gather(
            self.shards.starts[doc[is_token]] + offset[is_token]
        )
        if self.bos_id is not None:
            out[:, 0] = self.bos_id
        return out


class DocumentSequences:
    """One row per document of a split, truncated to ``max_len`` (the denoising autoencoder).

    Row ``i`` is ``[bos_id] + document i + [eos_id]`` (each special token only when given),
    the document cut so that the row has at most ``max_len`` tokens.
    """

    def __init__(
        self,
        shards: TokenShards,
        *,
        max_len: int,
        bos_id: int | None,
        eos_id: int | None,
        pad_id: int,
    ) -> None:
        self.shards = shards
        self.max_len = max_len
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.pad_id = pad_id
        self._n_bos = 0 if bos_id is None else 1
        n_special = self._n_bos + (0 if eos_id is None else 1)
        if not isinstance(max_len, int) or max_len - n_special < 1:
            raise WarmstartError(
                f"max_len (--max-len) {max_len!r}: must be an integer of at least "
                f"{n_special + 1}; 128 or 512 is typical"
            )
        self._room = max_len - n_special  # document tokens a row can hold
        self._n_special = n_special

    def __len__(self) -> int:
        return self.shards.n_docs

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, lengths)`` of the rows at ``rows``.

        ``ids`` is ``(len(rows), L)`` int64 padded with ``pad_id``, ``L`` the longest of these
        rows (at most ``max_len``); ``lengths`` is ``(len(rows),)`` int64.
        """
        rows = _checked_rows(rows, len(self))
        kept = np.minimum(self.shards.lengths[rows], self._room)  # document tokens per row
        lengths = kept + self._n_special
        width = int(lengths.max()) if len(rows) else 0
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        for b, (row, n) in enumerate(zip(rows.tolist(), kept.tolist(), strict=True)):
            start = int(self.shards.starts[row])
            ids[b, self._n_bos : self._n_bos + n] = self.shards.read(start, start + n)
            if self.eos_id is not None:
                ids[b, self._n_bos + n] = self.eos_id
        if self.bos_id is not None:
            ids[:, 0] = self.bos_id
        return ids, lengths


def rows_for_step(step: int, batch_size: int, n_rows: int, *, seed: int) -> np.ndarray:
    """The row indices of training step ``step``'s batch (0-based): int64 ``(batch_size,)``.

    Flat position ``k = step * batch_size + j`` is row ``perm[k % n_rows]`` of epoch
    ``k // n_rows``, where ``perm`` is ``np.random.default_rng([seed, epoch]).permutation``.
    So each epoch visits every row once, in its own order, and a resumed run needs only its
    step number and seed to continue exactly.
    """
    if n_rows <= 0:
        raise WarmstartError(
            "no training rows: the corpus is too small for one sequence of seq_len (--seq-len) "
            "tokens; use more text or a smaller --seq-len"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise WarmstartError(
            f"batch_size (--batch-size) {batch_size!r}: must be a positive integer"
        )
    if not isinstance(seed, int) or seed < 0:
        raise WarmstartError(f"seed (--seed) {seed!r}: must be an integer of 0 or more")
    if step < 0:
        raise ValueError(f"step must be 0 or more, got {step}")
    flat = step * batch_size + np.arange(batch_size, dtype=np.int64)
    epochs, within = np.divmod(flat, n_rows)
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in range(int(epochs[0]), int(epochs[-1]) + 1):
        here = epochs == epoch
        out[here] = _permutation(seed, epoch, n_rows)[within[here]]
    return out


@functools.lru_cache(maxsize=2)  # a batch spans at most two epochs unless it exceeds n_rows
def _permutation(seed: int, epoch: int, n_rows: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch]).permutation(n_rows)
    perm.flags.writeable = False
    return perm


class PretrainBatches:
    """Global batches for the loop: rows chosen by (seed, step), prepared by the objective."""

    def __init__(
        self,
        objective: Objective,
        train_rows: PackedSequences | DocumentSequences,
        valid_rows: PackedSequences | DocumentSequences | None,
        *,
        batch_size: int,
        seed: int,
    ) -> None:
        self.objective = objective
        self.train_rows = train_rows
        self.valid_rows = valid_rows
        self.batch_size = batch_size
        self.seed = seed
        self._valid: list[Prepared] | None = None

    def _prepare(self, rows: np.ndarray, rows_of: Any, seed: int) -> tuple[Prepared, int]:
        generator = torch.Generator().manual_seed(seed)
        if isinstance(rows_of, DocumentSequences):
            ids, lengths = rows_of.batch(rows)
            t_ids, t_len = torch.from_numpy(ids), torch.from_numpy(lengths)
            return self.objective.prepare(t_ids, t_len, generator=generator), int(lengths.sum())
        ids = rows_of.batch(rows)
        return self.objective.prepare(torch.from_numpy(ids), None, generator=generator), ids.size

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        rows = rows_for_step(step, self.batch_size, len(self.train_rows), seed=self.seed)
        return self._prepare(rows, self.train_rows, mix_seed(self.seed, "train", step))

    def valid_batches(self, n: int) -> Sequence[Prepared]:
        if self._valid is None:
            self._valid = []
            if self.valid_rows is not None and len(self.valid_rows):
                order = np.arange(len(self.valid_rows))
                for i in range(min(n, math.ceil(len(order) / self.batch_size))):
                    rows = order[i * self.batch_size:(i + 1) * self.batch_size]
                    self._valid.append(self._prepare(rows, self.valid_rows, mix_seed(self.seed, "valid", i))[0])
        return self._valid[:n]

