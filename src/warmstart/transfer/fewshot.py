"""Few labels: SetFit's contrastive tuning of the body on pairs.

SetFit (Tunstall et al. 2022) first tunes a sentence encoder on pairs of the labeled texts
(same label: cosine similarity 1, different labels: 0, a squared-error loss), so that the
classes pull apart in embedding space; a simple head is then fitted on the tuned features.
Here the first phase is :func:`contrastive_tune` (``finetune(..., contrastive=20)``), and the
head phase is any of ``finetune``'s methods: ``probe`` (SetFit's logistic regression),
``finetune`` (end to end) or ``prototype`` (:mod:`warmstart.transfer.heads`).

Pairs are drawn per step, a pure function of (seed, step), so a step's batch costs the
memory of that batch only: an epoch is ``pairs`` positive and ``pairs`` negative pairs per
labeled example (SetFit's ``num_iterations``), linear in the number of examples. (SetFit's
own all-pairs generation is quadratic and runs out of memory on larger sets.)

:func:`in_batch_tune` trains on the same loss with every two texts of a batch a pair
(:class:`GroupBatches`): B(B-1)/2 pairs for the passes of B texts, where SetFit's pairs give
B/2. ``--recipe auto`` runs it where SetFit's pair phase would not fit its time budget.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.train.batches import Prepared
from warmstart.transfer.bodies import encoded_length


class PairBatches:
    """Batches of labeled pairs for contrastive tuning: rows ``2i`` and ``2i+1`` are a pair.

    Each pair has a ``target``: 1 when both texts have the same label, 0 otherwise; half the
    pairs of an epoch are positive. An epoch visits every labeled example ``2 * pairs`` times
    as the anchor (once per pair), in an order drawn from (seed, epoch). ``valid_batches``
    are fixed pairs of the dev examples (or of the training examples if there is no dev).
    """

    def __init__(
        self,
        body: Any,
        ids: list[Any],
        y: np.ndarray,
        *,
        pairs: int,
        batch_pairs: int,
        seed: int,
        dev_ids: list[Any] | None = None,
        dev_y: np.ndarray | None = None,
    ) -> None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise WarmstartError("--contrastive: pairs need one label per text; multi-label "
                                 "data is not supported")
        if pairs < 1:
            raise WarmstartError(f"--contrastive {pairs}: give at least 1 pair per example")
        if len(np.unique(y)) < 2:
            raise WarmstartError("--contrastive: pairs need examples of at least 2 classes")
        self.body, self.ids, self.y = body, ids, y
        self.pairs, self.batch_pairs, self.seed = pairs, batch_pairs, seed
        self.lengths = np.array([encoded_length(x) for x in ids], dtype=np.int64)
        self.slots = len(ids) * 2 * pairs  # anchor visits per epoch
        self.steps_per_epoch = max(1, math.ceil(self.slots / batch_pairs))
        self._members = _members(y)
        self._dev = (dev_ids, np.asarray(dev_y)) if dev_ids and dev_y is not None else (ids, y)
        self._order: tuple[int, np.ndarray] | None = None
        self._valid: list[Prepared] | None = None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(self.slots))
        return self._order[1]

    def pairs_of(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(anchors, partners, targets) of ``step``'s batch."""
        epoch, k = divmod(step, self.steps_per_epoch)
        slots = self._epoch_order(epoch)[k * self.batch_pairs:(k + 1) * self.batch_pairs]
        anchors = slots // (2 * self.pairs)
        positive = slots % 2 == 0
        rng = np.random.default_rng([self.seed, 1, step])
        return (anchors, _partners(self._members, self.y, anchors, positive, rng),
                positive.astype(np.float32))

    def _prepare(self, ids: list[Any], a: np.ndarray, b: np.ndarray, t: np.ndarray) -> Prepared:
        rows = np.stack([a, b], 1).reshape(-1)  # a0 b0 a1 b1 ...
        tensors = self.body.batch([ids[i] for i in rows])
        tensors["target"] = torch.from_numpy(np.repeat(t, 2))
        return Prepared(tensors=tensors, norms={"rows": float(len(a))})

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        a, b, t = self.pairs_of(step)
        return self._prepare(self.ids, a, b, t), int(self.lengths[a].sum() + self.lengths[b].sum())

    def valid_batches(self, n: int) -> list[Prepared]:
        """``n`` fixed batches of dev pairs, half of them positive."""
        if self._valid is None:
            ids, y = self._dev
            members = _members(y)
            rng = np.random.default_rng([self.seed, 2])
            self._valid = []
            if len(np.unique(y)) >= 2:
                for _ in range(n):
                    a = rng.integers(0, len(ids), self.batch_pairs)
                    positive = np.arange(self.batch_pairs) % 2 == 0
                    b = _partners(members, y, a, positive, rng)
                    self._valid.append(self._prepare(ids, a, b, positive.astype(np.float32)))
        return self._valid


class GroupBatches:
    """Batches of labeled examples for in-batch contrastive tuning: every two texts of a batch
    are a pair (target 1 where their labels agree, else 0).

    A batch holds ``per_class`` examples of each class (``batch_texts`` split over the classes,
    at least 2, so that every class has a positive pair), each class's examples taken in turn
    from its own order drawn per (seed, class, epoch): a batch of B texts gives B(B-1)/2 pairs
    for the encoder passes of B texts, where SetFit's pairs give B/2. An epoch is as many
    steps as the examples fill.
    """

    def __init__(self, body: Any, ids: list[Any], y: np.ndarray, *, batch_texts: int,
                 seed: int) -> None:
        y = np.asarray(y)
        if y.ndim != 1 or len(np.unique(y)) < 2:
            raise WarmstartError("in-batch pairs need one label per text and at least 2 classes")
        self.body, self.ids, self.y, self.seed = body, ids, y, seed
        self.lengths = np.array([encoded_length(x) for x in ids], dtype=np.int64)
        self._by_class = {int(k): np.flatnonzero(y == k) for k in np.unique(y)}
        self.per_class = max(2, batch_texts // len(self._by_class))
        self.batch_size = self.per_class * len(self._by_class)
        self.steps_per_epoch = max(1, math.ceil(len(ids) / self.batch_size))
        self._valid: list[Prepared] | None = None

    def rows_of(self, step: int) -> np.ndarray:
        """The examples of ``step``'s batch: the next ``per_class`` of each class's order."""
        rows = []
        for k, members in self._by_class.items():
            start = step * self.per_class
            orders: dict[int, np.ndarray] = {}  # the class's order per epoch the batch reaches
            for at in range(start, start + self.per_class):
                epoch, i = divmod(at, len(members))
                if epoch not in orders:
                    rng = np.random.default_rng([self.seed, k, epoch])
                    orders[epoch] = rng.permutation(len(members))
                rows.append(members[orders[epoch][i]])
        return np.array(rows, dtype=np.int64)

    def _prepare(self, ids: list[Any], y: np.ndarray, rows: np.ndarray) -> Prepared:
        tensors = self.body.batch([ids[i] for i in rows])
        tensors["label"] = torch.from_numpy(y[rows].astype(np.int64))
        return Prepared(tensors=tensors, norms={"rows": len(rows) * (len(rows) - 1) / 2})

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        rows = self.rows_of(step)
        return self._prepare(self.ids, self.y, rows), int(self.lengths[rows].sum())

    def valid_batches(self, n: int) -> list[Prepared]:
        """``n`` fixed batches of the training examples (the pair phase has no dev split)."""
        if self._valid is None:
            rng = np.random.default_rng([self.seed, 2])
            size = min(self.batch_size, len(self.ids))
            self._valid = [self._prepare(self.ids, self.y, rng.choice(len(self.ids), size,
                                                                      replace=False))
                           for _ in range(n)]
        return self._valid


def _members(y: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per class: the indexes with that label and those without."""
    return {int(k): (np.flatnonzero(y == k), np.flatnonzero(y != k)) for k in np.unique(y)}


def _partners(members: dict[int, tuple[np.ndarray, np.ndarray]], y: np.ndarray,
              anchors: np.ndarray, positive: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A partner per anchor: another text of its class (positive) or of another class."""
    out = np.empty(len(anchors), dtype=np.int64)
    for i, (a, pos) in enumerate(zip(anchors.tolist(), positive.tolist(), strict=True)):
        same, other = members[int(y[a])]
        if pos:
            # Another member of the class; a class of one pairs its example with itself.
            choices = same[same != a] if len(same) > 1 else same
        else:
            choices = other
        out[i] = choices[rng.integers(len(choices))]
    return out


class ContrastiveModel(nn.Module):
    """The body trained so that cos(pair) approaches the pair's target (SetFit's loss): of the
    pairs the batch lists (a ``target``), or of every two rows (a ``label``)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = F.normalize(self.body(batch).float(), dim=-1)
        if "label" in batch:  # every two rows are a pair (GroupBatches)
            i, j = torch.triu_indices(len(z), len(z), 1, device=z.device)
            cos = (z[i] * z[j]).sum(-1)
            target = (batch["label"][i] == batch["label"][j]).float()
        else:  # rows 2i and 2i+1 are a pair (PairBatches)
            cos = (z[0::2] * z[1::2]).sum(-1)
            target = batch["target"][0::2].float()
        per_pair = (cos - target).pow(2)
        return per_pair.sum() / norms["rows"], {
            "pair_loss": per_pair.detach().sum(),
            "pair_correct": ((cos > 0.5).float() == target).float().sum().detach(),
            "pair_total": torch.tensor(float(len(target))),
        }


def contrastive_tune(
    body: nn.Module, ids: list[Any], y: np.ndarray, *, pairs: int, batch_pairs: int, lr: float,
    epochs: float, seed: int, dev_ids: list[Any] | None = None, dev_y: np.ndarray | None = None,
    out: Any = None, progress: bool = True, threads: int = 0, device: str = "auto",
    precision: str = "auto", stop_after: float = 0.0,
) -> Any:
    """SetFit's first phase: tune ``body`` on pairs of the encoded labeled texts, in place.

    Runs the training loop (AdamW, 10% warmup then linear decay, checkpoints into ``out``
    and resumes from it) for ``epochs`` passes of ``pairs`` positive and ``pairs`` negative
    pairs per example, ``batch_pairs`` pairs per step; ``stop_after`` seconds (0: no limit)
    end it early, whatever the schedule. Returns the loop's result.
    """
    batches = PairBatches(body, ids, y, pairs=pairs, batch_pairs=batch_pairs, seed=seed,
                          dev_ids=dev_ids, dev_y=dev_y)
    fingerprint = {"pairs": pairs, "batch_pairs": batch_pairs, "lr": lr, "seed": seed,
                   "n": len(ids)}
    return _tune(body, batches, 2 * batch_pairs, epochs, lr, seed, fingerprint, out=out,
                 progress=progress, threads=threads, device=device, precision=precision,
                 stop_after=stop_after)


def in_batch_tune(
    body: nn.Module, ids: list[Any], y: np.ndarray, *, batch_texts: int, lr: float,
    epochs: float, seed: int, out: Any = None, progress: bool = True, threads: int = 0,
    device: str = "auto", precision: str = "auto", stop_after: float = 0.0,
) -> Any:
    """SetFit's loss on every two texts of a batch (:class:`GroupBatches`), for ``epochs``
    passes over the examples, ``batch_texts`` per step: the pair phase in a fraction of its
    encoder passes. With 64 labels per class (MiniLM, dev splits drawn from train, one seed;
    ``benchmarks/pair_phase_dev.py``) 10 epochs of 32 texts at lr 5e-5 gave a probe of 79.7 in
    83 s on SST-2 and 63.8 in 120 s on tweets, SetFit's 20 pairs per example 79.7 in 455 s and
    61.9 in 728 s. Otherwise as :func:`contrastive_tune`."""
    batches = GroupBatches(body, ids, y, batch_texts=batch_texts, seed=seed)
    fingerprint = {"in_batch": batch_texts, "lr": lr, "seed": seed, "n": len(ids)}
    return _tune(body, batches, batches.batch_size, epochs, lr, seed,
                 fingerprint, out=out, progress=progress, threads=threads, device=device,
                 precision=precision, stop_after=stop_after)


def _tune(body: nn.Module, batches: PairBatches | GroupBatches, batch_size: int, epochs: float,
          lr: float, seed: int, fingerprint: dict[str, Any], *, out: Any, progress: bool,
          threads: int, device: str, precision: str, stop_after: float) -> Any:
    from warmstart.train.budget import Budget
    from warmstart.train.loop import TrainConfig, train

    steps = max(1, math.ceil(epochs * batches.steps_per_epoch))
    config = TrainConfig(batch_size=batch_size, lr=lr, warmup=0.1, seed=seed,
                         eval_every=batches.steps_per_epoch, eval_batches=4,
                         checkpoint_every=min(200, steps), log_every=max(1, min(10, steps // 4)),
                         threads=threads, device=device, precision=precision)
    return train(ContrastiveModel(body), batches, config,
                 budget=Budget(max_steps=steps, stop_after=stop_after),
                 out=out, fingerprint={"contrastive": fingerprint}, progress=progress)
