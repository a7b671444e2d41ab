"""End-to-end training of a :class:`TextClassifier` (body and heads) by the one training loop.

The classifier trains on the first of each task's (train, dev) splits in length-bucketed
batches; the dev split picks the best epoch (unless it is the training data itself). With
``few.consistency`` (UDA) each batch also carries unlabeled texts and their augmentations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.artifact import check_room
from warmstart.train.budget import Budget, parse_duration
from warmstart.train.loop import Monitor, TrainConfig, TrainResult, train
from warmstart.transfer.batches import ClassificationBatches, encode
from warmstart.transfer.bodies import Body, EncoderBody, WordVectorBody
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.heads import Splits, fit_heads
from warmstart.transfer.model import Regularisation, Task, TextClassifier
from warmstart.transfer.settings import MIN_STEPS, FewLabelsConfig, FinetuneConfig


def _class_weights(task: Task, y: np.ndarray) -> torch.Tensor:
    if task.multi_label:
        pos = y.sum(0).astype(np.float64)
        return torch.tensor((len(y) - pos) / np.maximum(pos, 1.0), dtype=torch.float32)
    counts = np.bincount(y, minlength=len(task.labels)).astype(np.float64)
    return torch.tensor(len(y) / (len(counts) * np.maximum(counts, 1.0)), dtype=torch.float32)


def train_classifier(
    body: Body, task_list: list[Task],
    splits: Splits, cfg: FinetuneConfig,
    tcfg: TrainConfig, out: Path | None, progress: bool, *, chosen: set[str],
    few: FewLabelsConfig | None = None, extra: dict[str, list[str]] | None = None,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None, stop_after: float = 0.0,
) -> tuple[Classifier, TrainResult]:
    reg = Regularisation(dropout=cfg.dropout, l1=cfg.l1, l2=cfg.l2, l2sp=cfg.l2sp,
                         layer_lr_decay=cfg.layer_lr_decay, unfreeze=cfg.unfreeze,
                         freeze_body=cfg.freeze and isinstance(body, EncoderBody))
    weights = ({t.name: _class_weights(t, splits[t.name][0].y) for t in task_list}
               if cfg.class_weights == "balanced" else None)
    model = TextClassifier(body, task_list, reg=reg, class_weights=weights)
    if cfg.head_init == "probe":  # LP-FT: a fitted head first, so fine-tuning starts aligned
        fit_heads(model, splits, cfg, tcfg.precision)
    n_labels = max(len(t.labels) for t in task_list)
    train_enc = [encode(body, i, tr.texts, tr.y) for i, (tr, _) in enumerate(splits.values())]
    dev_enc = [encode(body, i, dv.texts, dv.y) for i, (_, dv) in enumerate(splits.values())]
    batches = ClassificationBatches(body, train_enc, dev_enc, batch_size=tcfg.batch_size,
                                    seed=tcfg.seed, temperature=cfg.task_temperature,
                                    n_labels=n_labels)
    per_epoch = batches.steps_per_epoch
    if not chosen & {"epochs", "max_steps", "max_tokens", "time_budget"}:
        # Few labels make short epochs: train for enough steps to learn (the best epoch on
        # dev is kept), between the body's default epochs and 20.
        epochs = min(20.0, max(tcfg.epochs, math.ceil(MIN_STEPS / per_epoch)))
        tcfg = dataclasses.replace(tcfg, epochs=float(epochs))
    if "eval_every" not in chosen:
        tcfg = dataclasses.replace(tcfg, eval_every=per_epoch, checkpoint_every=per_epoch,
                                   log_every=max(1, min(tcfg.log_every, per_epoch // 4 or 1)))
    if out is not None:
        n_params = sum(p.numel() for p in model.parameters())
        # fp32 weights in the artifact and the checkpoint, AdamW's two moments
        check_room(out, 16 * n_params, what="the classifier and its checkpoint")
    seconds = parse_duration(tcfg.time_budget) if tcfg.time_budget else 0.0
    max_steps = tcfg.max_steps or math.ceil((tcfg.epochs or 1.0) * per_epoch)
    budget = Budget(max_steps=max_steps, max_tokens=tcfg.max_tokens, seconds=seconds,
                    stop_after=stop_after)
    # Several tasks: the mean of their dev accuracies picks the best weights. Dev texts that
    # are all training texts (--dev-fraction 0, and self-training rounds after it) select
    # nothing: the first epoch that fits them would win, so the last weights are kept.
    accuracies = tuple(f"valid_{t.name}_accuracy" for t in task_list)
    dev_is_training = all(set(dv.texts) <= set(tr.texts) for tr, dv in splits.values())
    monitor = None if dev_is_training else Monitor(
        key=(accuracies[0] if len(accuracies) == 1 else accuracies)
        if cfg.monitor == "accuracy" else "valid_loss",
        mode="max" if cfg.monitor == "accuracy" else "min", patience=cfg.patience)
    fingerprint = {
        "finetune": dataclasses.asdict(cfg),
        "train": {k: v for k, v in dataclasses.asdict(tcfg).items()
                  if k not in ("threads", "device", "eval_every", "checkpoint_every", "log_every",
                               "max_steps", "epochs", "time_budget", "max_tokens")},
        "data": {name: tr.content_hash() for name, (tr, _) in splits.items()},
        "body": hashlib.sha256(repr(body.describe()).encode()).hexdigest()[:16],
    }
    uda = few if few is not None and few.consistency and extra else None
    unlabeled: list[Any] = []
    augmented: list[Any] = []
    if uda is not None:
        assert extra is not None
        unlabeled, augmented = body.encode(extra["unlabeled"]), body.encode(extra["unlabeled_aug"])
    # Word-vector tables train only the rows the batches look up (the same weights, faster;
    # trained_rows.py), unless a penalty on the weights (L1, L2, L2-SP) reaches every row.
    only_seen: AbstractContextManager[None] = nullcontext()
    if isinstance(body, WordVectorBody) and not (reg.l1 or reg.l2 or reg.l2sp):
        seen = [item for enc in train_enc for item in enc.ids] + unlabeled + augmented
        only_seen = body.training_only_seen_rows(seen)
        fingerprint["rows"] = "seen"  # a checkpoint of whole tables is not resumed into these
    with only_seen:
        if uda is not None:
            from warmstart.transfer.semisup import ConsistencyBatches, ConsistencyClassifier

            # UDA: each step adds --consistency-ratio unlabeled texts per labeled one, each
            # with its augmentation; the loop's batch is all of those rows.
            mixed = ConsistencyBatches(batches, unlabeled, augmented,
                                       ratio=uda.consistency_ratio, seed=tcfg.seed)
            trained = ConsistencyClassifier(model, weight=uda.consistency,
                                            confidence=uda.consistency_confidence,
                                            temperature=uda.sharpen, tsa=uda.tsa)
            loop_cfg = dataclasses.replace(tcfg, batch_size=mixed.rows_per_step)
            fingerprint["few_labels"] = dataclasses.asdict(uda)
            result = train(trained, mixed, loop_cfg, budget=budget, out=out,
                           fingerprint=fingerprint, progress=progress, monitor=monitor,
                           on_validate=on_validate)
        else:
            result = train(model, batches, tcfg, budget=budget, out=out,
                           fingerprint=fingerprint, progress=progress, monitor=monitor,
                           on_validate=on_validate)
    model.tsa = 1.0
    model.cpu().eval()
    return Classifier(model, precision=tcfg.precision), result
