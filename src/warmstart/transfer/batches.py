"""Labeled batches for the training loop, bucketed by length so padding is barely computed.

Each epoch is a permutation drawn from (seed, epoch); within windows of ``window`` batches the
texts are sorted by length before being cut into batches, and the batches are then shuffled.
So a batch holds texts of similar length (little padding) while the order stays random, and
the batch of any step is a pure function of (seed, step): resuming repeats it exactly.

Several tasks (multi-task training) are mixed by sampling each batch's task with probability
proportional to its size to the power ``1/temperature`` (1: proportional; larger: flatter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from warmstart.train.batches import Prepared
from warmstart.transfer.bodies import encoded_length


@dataclass
class Encoded:
    """One task's texts as the body's ids, with targets."""

    task: int
    ids: list[Any]  # what the body's ``encode`` made, one entry per text
    lengths: np.ndarray  # (N,) a length per text, for bucketing
    y: np.ndarray  # (N,) class indexes, or (N, K) 0/1 for multi-label

    def __len__(self) -> int:
        return len(self.ids)


def encode(body: Any, task: int, texts: Sequence[str], y: np.ndarray) -> Encoded:
    ids = body.encode(texts)
    return Encoded(task, ids, np.array([encoded_length(x) for x in ids], dtype=np.int64), np.asarray(y))


class ClassificationBatches:
    """The loop's batch source for classification (one or several tasks)."""

    def __init__(
        self,
        body: Any,
        train: list[Encoded],
        dev: list[Encoded],
        *,
        batch_size: int,
        seed: int,
        temperature: float = 1.0,
        window: int = 50,
        n_labels: int = 2,
    ) -> None:
        self.body = body
        self.train = train
        self.dev = dev
        self.batch_size = batch_size
        self.seed = seed
        self.window = window
        self.n_labels = n_labels
        sizes = np.array([len(e) for e in train], dtype=np.float64)
        weights = sizes ** (1.0 / temperature)
        self.task_p = weights / weights.sum()
        # An "epoch" is as many batches as the training rows fill, over all tasks.
        self.steps_per_epoch = max(1, math.ceil(sizes.sum() / batch_size))
        self._plans: dict[tuple[int, int], list[np.ndarray]] = {}
        self._valid: list[Prepared] | None = None
        self._tasks = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros((0, len(train)), dtype=np.int64)  # (steps + 1, tasks) seen before

    def _plan(self, task: int, epoch: int) -> list[np.ndarray]:
        """The batches (row indexes) of one task's epoch, bucketed by length."""
        key = (task, epoch)
        if key not in self._plans:
            enc = self.train[task]
            rng = np.random.default_rng([self.seed, task, epoch])
            order = rng.permutation(len(enc))
            span = self.batch_size * self.window
            batches: list[np.ndarray] = []
            for start in range(0, len(order), span):
                chunk = order[start:start + span]
                chunk = chunk[np.argsort(enc.lengths[chunk], kind="stable")]
                batches.extend(chunk[i:i + self.batch_size]
                               for i in range(0, len(chunk), self.batch_size))
            rng.shuffle(batches)  # type: ignore[arg-type]
            self._plans = {k: v for k, v in self._plans.items() if k[1] >= epoch - 1}
            self._plans[key] = batches
        return self._plans[key]

    def _task_step(self, step: int) -> tuple[int, int]:
        """Which task the batch of ``step`` comes from, and that task's own batch counter."""
        if len(self.train) == 1:
            return 0, step
        while len(self._tasks) <= step:  # the task sequence, drawn in blocks of 4096 steps
            block = len(self._tasks) // 4096
            draws = np.random.default_rng([self.seed, 7, block]).choice(
                len(self.train), size=4096, p=self.task_p)
            self._tasks = np.concatenate([self._tasks, draws])
            seen = np.zeros((len(draws) + 1, len(self.train)), dtype=np.int64)
            seen[1:][np.arange(len(draws)), draws] = 1
            before = self._counts[-1] if len(self._counts) else np.zeros(len(self.train), np.int64)
            counts = before + np.cumsum(seen, axis=0)
            self._counts = counts if not len(self._counts) else np.concatenate(
                [self._counts[:-1], counts])
        task = int(self._tasks[step])
        return task, int(self._counts[step, task])

    def _prepare(self, enc: Encoded, rows: np.ndarray) -> Prepared:
        tensors = self.body.batch([enc.ids[i] for i in rows])
        tensors["task"] = torch.full((len(rows),), enc.task, dtype=torch.long)
        y = enc.y[rows]
        if y.ndim == 2:
            multi = torch.zeros((len(rows), self.n_labels))
            multi[:, : y.shape[1]] = torch.from_numpy(y.astype(np.float32))
            tensors["y_multi"] = multi
            tensors["y"] = torch.zeros(len(rows), dtype=torch.long)
        else:
            tensors["y"] = torch.from_numpy(y.astype(np.int64))
            tensors["y_multi"] = torch.zeros((len(rows), self.n_labels))
        return Prepared(tensors=tensors, norms={"rows": float(len(rows))})

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        task, count = self._task_step(step)
        enc = self.train[task]
        plan_len = math.ceil(len(enc) / self.batch_size)
        rows = self._plan(task, count // plan_len)[count % plan_len]
        return self._prepare(enc, rows), int(enc.lengths[rows].sum())

    def valid_batches(self, n: int) -> Sequence[Prepared]:
        """All of the dev set (``n`` is ignored: the dev set decides early stopping)."""
        if self._valid is None:
            self._valid = []
            for enc in self.dev:
                order = np.argsort(enc.lengths, kind="stable")
                for i in range(0, len(order), self.batch_size):
                    self._valid.append(self._prepare(enc, order[i:i + self.batch_size]))
        return self._valid
