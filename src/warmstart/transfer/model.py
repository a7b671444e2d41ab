"""A text classifier: a body (encoder or word vectors) and one linear head per task.

The module is what the training loop trains (``forward(batch, norms) -> (loss, stats)``) and
what prediction runs (``logits``). It also carries the regularisers that need the weights:

* ``l1`` and ``l2``: penalties on the weights in the loss (both: the elastic net);
  AdamW's decoupled ``weight_decay`` is the loop's;
* ``l2sp``: L2-SP, a Gaussian prior centred on the pretrained weights, ``l2sp/2 * |w - w0|^2``
  over the body (the MAP view of "stay near what pretraining learned"; Li et al. 2018);
* discriminative learning rates (``layer_lr_decay``: each block below the top one learns
  that much slower, ULMFiT / ELECTRA) and gradual unfreezing (``unfreeze``: the head trains
  alone first, then blocks join from the top down over that share of the run);
* ``tsa``: training-signal annealing (UDA), set by :mod:`warmstart.transfer.semisup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.objectives.base import top1_correct
from warmstart.train.optim import decays
from warmstart.transfer.bodies import Body


@dataclass
class Task:
    """One labeled problem: its name, class names, and whether a text may have several."""

    name: str
    labels: list[str]
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum():
            raise WarmstartError(f"task name {self.name!r}: use letters, digits and '_' only")
        if len(self.labels) < 2 and not self.multi_label:
            raise WarmstartError(
                f"task {self.name}: a classifier needs at least 2 classes, the data has "
                f"{len(self.labels)} ({', '.join(self.labels) or 'none'}); check --label-field")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "multi_label": self.multi_label}


@dataclass
class Regularisation:
    dropout: float = 0.1
    l1: float = 0.0
    l2: float = 0.0
    l2sp: float = 0.0
    layer_lr_decay: float = 1.0
    unfreeze: float = 0.0
    freeze_body: bool = False


class TextClassifier(nn.Module):
    """Body -> dropout -> a linear head per task."""

    def __init__(
        self,
        body: Body,
        tasks: list[Task],
        *,
        reg: Regularisation | None = None,
        class_weights: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.tasks = tasks
        self.reg = reg or Regularisation()
        self.dropout = nn.Dropout(self.reg.dropout)
        self.heads = nn.ModuleDict({t.name: nn.Linear(body.dim, len(t.labels)) for t in tasks})
        for t in tasks:
            nn.init.normal_(self.head(t.name).weight, std=0.02)
            nn.init.zeros_(self.head(t.name).bias)
        for t in tasks:
            w = (class_weights or {}).get(t.name)
            self.register_buffer(f"weight_{t.name}", w if w is not None else None,
                                 persistent=False)
        # L2-SP's centre: the body's starting weights, as buffers that follow the module's
        # device but are not saved with the classifier.
        self.start = nn.Module()
        if self.reg.l2sp:
            for k, p in body.named_parameters():
                self.start.register_buffer(k.replace(".", "__"), p.detach().clone(),
                                           persistent=False)
        if self.reg.freeze_body:
            body.requires_grad_(False)
        # Training-signal annealing (UDA, Xie et al. 2020): while training, single-label rows
        # whose correct class already has a probability above ``tsa`` leave the supervised
        # loss, so a few labels are not memorised before the unlabeled signal has grown.
        # 1.0 keeps every row; semi-supervised training sets it each step.
        self.tsa: float = 1.0

    def head(self, task: str) -> nn.Linear:
        """The linear head of ``task``: (B, C) -> (B, K)."""
        head = self.heads[task]
        assert isinstance(head, nn.Linear)
        return head

    @torch.no_grad()
    def set_head(self, task: str, weight: Any, bias: Any) -> None:
        """Set ``task``'s head to a fitted linear map: (K, C) weight and (K,) bias arrays."""
        head = self.head(task)
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))

    # -- prediction ------------------------------------------------------------------------
    def logits(self, batch: dict[str, torch.Tensor], task: str | None = None) -> torch.Tensor:
        """(B, K) scores of ``task`` (the first task by default) for every row."""
        name = task or self.tasks[0].name
        return self.head(name)(self.body(batch))

    # -- training --------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Summed loss of the rows of each task, over the global batch's rows, + penalties."""
        features = self.dropout(self.body(batch))  # (B, C)
        task_of = batch["task"]
        loss = features.new_zeros((), dtype=torch.float32)
        stats: dict[str, torch.Tensor] = {}
        for t_index, t in enumerate(self.tasks):
            rows = task_of == t_index
            if len(self.tasks) > 1 and not bool(rows.any()):
                continue
            logits = self.head(t.name)(features[rows]).float()  # (n, K)
            weight = getattr(self, f"weight_{t.name}")
            prefix = t.name
            if t.multi_label:
                target = batch["y_multi"][rows][:, : len(t.labels)].float()
                per_row = F.binary_cross_entropy_with_logits(
                    logits, target, pos_weight=weight, reduction="none").sum(1)
                correct = ((logits > 0).float() == target).all(1).float().sum()
            else:
                target = batch["y"][rows]
                per_row = F.cross_entropy(logits, target, weight=weight, reduction="none")
                correct = top1_correct(logits, target).float().sum()  # a tie: wrong
            trained = per_row
            if not t.multi_label and self.tsa < 1.0 and self.training:
                with torch.no_grad():
                    p_true = logits.softmax(1).gather(1, target[:, None]).squeeze(1)  # (n,)
                trained = per_row * (p_true <= self.tsa).to(per_row.dtype)
            loss = loss + trained.sum() / norms["rows"]
            stats[f"{prefix}_correct"] = correct.detach()
            stats[f"{prefix}_total"] = torch.tensor(float(per_row.numel()))
            stats[f"{prefix}_loss"] = per_row.detach().sum()
        share = batch["task"].shape[0] / norms["rows"]  # penalties once per global batch
        penalty = self.penalty()
        if penalty is not None:
            loss = loss + penalty * share
        return loss, stats

    def penalty(self) -> torch.Tensor | None:
        reg = self.reg
        terms = []
        if reg.l1 or reg.l2:
            weights = [p for p in self.parameters() if p.requires_grad and p.dim() >= 2]
            if reg.l1:
                terms.append(reg.l1 * sum(p.abs().sum() for p in weights))
            if reg.l2:
                terms.append(0.5 * reg.l2 * sum((p * p).sum() for p in weights))
        if reg.l2sp:
            start = dict(self.start.named_buffers())
            drift = [(p - start[k.replace(".", "__")]).pow(2).sum()
                     for k, p in self.body.named_parameters() if p.requires_grad]
            if drift:
                terms.append(0.5 * reg.l2sp * sum(drift))
        return sum(terms) if terms else None  # type: ignore[return-value]

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups: heads at the full rate, body blocks slower the lower they sit.

        With L2-SP the body is not also decayed toward zero (the prior replaces that).
        """
        blocks = self.body.blocks()
        groups: list[dict[str, Any]] = []
        seen: set[int] = set()

        def add(modules: list[nn.Module], scale: float, decay: float) -> None:
            params = [p for m in modules for p in m.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            matrices = [p for p in params if decays(p)]
            others = [p for p in params if not decays(p)]
            if matrices:
                groups.append({"params": matrices, "weight_decay": decay, "lr_scale": scale})
            if others:
                groups.append({"params": others, "weight_decay": 0.0, "lr_scale": scale})

        add(list(self.heads.values()), 1.0, weight_decay)
        body_decay = 0.0 if self.reg.l2sp else weight_decay
        for depth, block in enumerate(reversed(blocks)):
            add(block, self.reg.layer_lr_decay ** depth, body_decay)
        add([self], 1.0, weight_decay)  # anything not in a block
        # Frozen parameters still get a group, so that unfreezing needs no new optimizer.
        return [g for g in groups if g["params"]]

    def on_step(self, progress: float) -> None:
        """Gradual unfreezing: the head alone, then body blocks from the top down."""
        if not self.reg.unfreeze or self.reg.freeze_body:
            return
        blocks = list(reversed(self.body.blocks()))  # top first
        thawed = (len(blocks) if progress >= self.reg.unfreeze
                  else int(len(blocks) * progress / self.reg.unfreeze))
        for depth, block in enumerate(blocks):
            for m in block:
                m.requires_grad_(depth < thawed)
