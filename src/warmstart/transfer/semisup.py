"""Semi-supervised learning: learning from unlabeled texts beside a few labeled ones.

Two families, as pieces the training code composes:

* self-training: a classifier labels the unlabeled pool, and the texts it is most sure of join
  the training set (:func:`select_pseudo_labels`, class-balanced so that the easy class does
  not take over);
* consistency training, UDA (Xie et al. 2020, "Unsupervised Data Augmentation for Consistency
  Training"): the prediction on an augmented copy of an unlabeled text is pulled toward the
  (sharpened, confidence-masked) prediction on the original (:func:`consistency_loss`), while
  training-signal annealing keeps the few labels from being memorised early
  (:func:`tsa_threshold`, applied through ``TextClassifier.tsa``).
  :class:`ConsistencyBatches` and :class:`ConsistencyClassifier` are its batch source and
  module for the one training loop.

    >>> batches = ConsistencyBatches(labeled, orig_ids, aug_ids, ratio=3, seed=0)  # doctest: +SKIP
    >>> module = ConsistencyClassifier(classifier, weight=1.0, tsa="linear")      # doctest: +SKIP
    >>> config = TrainConfig(batch_size=batches.rows_per_step)                   # doctest: +SKIP
    >>> train(module, batches, config, budget=Budget(max_steps=1000))            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.train.batches import Prepared
from warmstart.transfer.batches import ClassificationBatches
from warmstart.transfer.bodies import encoded_length
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.model import TextClassifier
from warmstart.transfer.settings import FewLabelsConfig

#: Training-signal annealing schedules: how fast the threshold rises from 1/K to 1.
TSA_SCHEDULES = ("none", "linear", "log", "exp")

#: What a row of a :class:`ConsistencyBatches` batch is (its ``role`` tensor).
LABELED, ORIGINAL, AUGMENTED = 0, 1, 2


# -- self-training ---------------------------------------------------------------------------


def select_pseudo_labels(
    probs: np.ndarray, threshold: float, *, balance: bool = True, max_per_class: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The texts confident enough to be pseudo-labeled: (indexes, predicted classes).

    ``probs`` (N, K) are a classifier's class probabilities on the unlabeled texts. A text is
    kept when its top probability is at least ``threshold``; its pseudo-label is that class
    (the lowest class on a tie). With ``balance``, every class keeps as many texts as the class
    with the fewest confident ones (so none if some class has none), each class's most
    confident first; ``max_per_class`` caps every class (0: no cap). Equal probabilities go
    to the lower index, so the choice is deterministic. Indexes come back in increasing order.

    >>> select_pseudo_labels(np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05]]), 0.7)
    (array([1, 2]), array([1, 0]))
    """
    if not 0.0 < threshold <= 1.0:
        raise WarmstartError(f"pseudo-label threshold {threshold}: must be in (0, 1]")
    if max_per_class < 0:
        raise WarmstartError(f"max_per_class {max_per_class}: must be 0 (no cap) or more")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise WarmstartError(f"probabilities of shape {probs.shape}: expected (texts, classes)")
    labels = probs.argmax(1)
    top = probs[np.arange(len(probs)), labels]
    confident = np.flatnonzero(top >= threshold)
    per_class = []
    for k in range(probs.shape[1]):
        rows = confident[labels[confident] == k]
        per_class.append(rows[np.lexsort((rows, -top[rows]))])  # most confident, then index
    take = min(len(r) for r in per_class) if balance else max(len(r) for r in per_class)
    if max_per_class:
        take = min(take, max_per_class)
    idx = np.sort(np.concatenate([r[:take] for r in per_class])).astype(np.int64)
    return idx, labels[idx].astype(np.int64)


#: The least share of a self-training student's weight the true labels keep, unless a recipe
#: says otherwise (``SelfTrain.label_share`` in :mod:`.recipes`).
LABEL_SHARE = 0.2


@dataclasses.dataclass(eq=False, repr=False)
class PseudoLabels(LabeledDataset):
    """Texts a teacher labeled, and the least share of the training weight that the true
    labels keep beside them (the labels are weighted up to it where the pseudo-labels
    outnumber them)."""

    label_share: float = LABEL_SHARE


def pseudo_label(probs: np.ndarray, texts: Sequence[str], labeled: LabeledDataset, *,
                 share: float, label_share: float = LABEL_SHARE) -> PseudoLabels:
    """The texts a teacher is surest of, the same number for every class: ``share`` of the
    texts in all, at most as many per class as the least confident class has predicted;
    ``label_share``: the least share of the training weight the labels keep."""
    k = probs.shape[1]
    per_class = max(1, int(share * len(texts) / k))
    idx, y = select_pseudo_labels(probs, 1.0 / k, balance=True, max_per_class=per_class)
    return PseudoLabels(texts=[texts[i] for i in idx.tolist()], y=y.astype(np.int64),
                        labels=list(labeled.labels), multi_label=False,
                        source=f"{labeled.source} (pseudo-labels)", label_share=label_share)


def read_unlabeled(few: FewLabelsConfig, seed: int) -> list[str]:
    """The --unlabeled texts (a seeded sample of --unlabeled-max of them), or none."""
    if not few.unlabeled:
        return []
    from warmstart.corpus import Corpus

    texts = [t for t in Corpus(few.unlabeled, text_field=few.unlabeled_field) if t.strip()]
    if not texts:
        raise WarmstartError(f"--unlabeled {few.unlabeled}: no text found")
    if few.unlabeled_max and len(texts) > few.unlabeled_max:
        keep = np.sort(np.random.default_rng([seed, 4]).choice(len(texts), few.unlabeled_max,
                                                                replace=False))
        texts = [texts[i] for i in keep.tolist()]
    return texts


def concat(a: LabeledDataset, b: LabeledDataset) -> LabeledDataset:
    return dataclasses.replace(a, texts=a.texts + b.texts, y=np.concatenate([a.y, b.y]),
                               source=f"{a.source} + {b.source}", line_numbers=None,
                               doc_files=None)


def load_teacher(path: str) -> Classifier:
    from warmstart.artifact import META_FILE

    if not (Path(path) / META_FILE).exists():
        raise WarmstartError(f"--teacher {path}: not a classifier folder (no {META_FILE}); "
                             "give a folder `warmstart finetune --out` wrote")
    teacher = Classifier.load(path)
    if teacher.task().multi_label:
        raise WarmstartError(f"--teacher {path}: a multi-label classifier; self-training "
                             "needs one label per text")
    return teacher


def round_record(pseudo: LabeledDataset, round_: int, few: FewLabelsConfig, pool: int,
                  progress: bool) -> dict[str, Any]:
    """What a self-training round's pseudo-labels were (for provenance), told on stderr."""
    by = "the teacher" if few.teacher and round_ == 0 else "the model"
    if progress:
        print(f"self-training round {round_ + 1}/{few.self_train}: {len(pseudo):,} "
              f"pseudo-labels by {by} of {pool:,} unlabeled texts ({pseudo.class_counts()})",
              file=sys.stderr)
    return {"round": round_ + 1, "by": by, "pseudo_labels": len(pseudo),
            "per_class": pseudo.class_counts()}


def pseudo_labels(classifier: Classifier, unlabeled: list[str], few: FewLabelsConfig,
                   like: LabeledDataset, round_: int) -> LabeledDataset:
    """The unlabeled texts the classifier is confident about, with its predictions."""
    probs = classifier.predict_proba(unlabeled)
    if classifier.labels != list(like.labels):  # a teacher's labels, in ours
        if sorted(classifier.labels) != sorted(like.labels):
            raise WarmstartError(f"--teacher {few.teacher}: its labels {classifier.labels} "
                                 f"are not those of the training data, {list(like.labels)}")
        probs = probs[:, [classifier.labels.index(label) for label in like.labels]]
    idx, y = select_pseudo_labels(probs, few.pseudo_threshold, balance=few.pseudo_balance,
                                  max_per_class=few.pseudo_per_class)
    if not len(idx):
        confident = np.bincount(probs.argmax(1)[probs.max(1) >= few.pseudo_threshold],
                                minlength=probs.shape[1])
        warnings.warn(f"self-training round {round_ + 1}: no pseudo-labels; predictions above "
                      f"--pseudo-threshold {few.pseudo_threshold} per class: "
                      f"{dict(zip(like.labels, confident.tolist(), strict=True))} (with "
                      "--pseudo-balance every class needs some); lower the threshold",
                      stacklevel=2)
    return LabeledDataset(texts=[unlabeled[i] for i in idx.tolist()], y=y.astype(np.int64),
                          labels=list(like.labels), multi_label=False,
                          source=f"{few.unlabeled} (pseudo-labels of round {round_ + 1})")


def self_train(
    fit_round: Callable[[LabeledDataset, int, LabeledDataset | None], Classifier],
    labeled: LabeledDataset, unlabeled: list[str], few: FewLabelsConfig, *,
    teacher: Classifier | None = None, progress: bool = True,
) -> tuple[Classifier, list[dict[str, Any]]]:
    """Self-training rounds: ``fit_round(train_set, round, pseudo)`` trains a classifier on the
    labels and the previous round's pseudo-labels, which label ``unlabeled`` for the next.

    ``few.self_train`` rounds follow the first fit (none: one plain fit); a ``teacher`` makes
    the first round's pseudo-labels instead of a fit on the labels alone. Returns the last
    round's classifier and what each round's pseudo-labels were (for provenance).
    """
    pseudo: LabeledDataset | None = None
    rounds: list[dict[str, Any]] = []
    if teacher is not None:  # the first round's pseudo-labels are the teacher's
        pseudo = pseudo_labels(teacher, unlabeled, few, labeled, 0)
        rounds.append(round_record(pseudo, 0, few, len(unlabeled), progress))
    classifier: Classifier | None = None
    for r in range(1 if teacher is not None else 0, 1 + few.self_train):
        train_set = labeled if pseudo is None else concat(labeled, pseudo)
        classifier = fit_round(train_set, r, pseudo)
        if r < few.self_train:
            pseudo = pseudo_labels(classifier, unlabeled, few, train_set, r)
            rounds.append(round_record(pseudo, r, few, len(unlabeled), progress))
    assert classifier is not None
    return classifier, rounds


# -- UDA: training-signal annealing and the consistency loss ----------------------------------


def tsa_threshold(progress: float, n_classes: int, schedule: str) -> float:
    """UDA's training-signal annealing threshold at ``progress`` (0..1 of training).

    A labeled row whose correct class already has a higher probability than this leaves the
    supervised loss. It rises from 1/K (chance) at the start to 1 (every row counts) at the
    end: ``alpha * (1 - 1/K) + 1/K`` with ``alpha`` = t ("linear"), 1 - exp(-5t) ("log":
    fast at first) or exp(5(t - 1)) ("exp": slow at first, for when the labels are few and
    easily memorised). These are the paper's formulas, so "exp" starts and "log" ends
    exp(-5) (0.7%) of the way off. "none" is 1 throughout: no annealing.
    """
    if schedule not in TSA_SCHEDULES:
        raise WarmstartError(f"--tsa {schedule}: use one of {', '.join(TSA_SCHEDULES)}")
    if n_classes < 2:
        raise WarmstartError(f"training-signal annealing needs 2 or more classes, got {n_classes}")
    if schedule == "none":
        return 1.0
    t = min(1.0, max(0.0, float(progress)))
    if schedule == "linear":
        alpha = t
    elif schedule == "log":
        alpha = 1.0 - math.exp(-5.0 * t)
    else:
        alpha = math.exp(5.0 * (t - 1.0))
    return alpha * (1.0 - 1.0 / n_classes) + 1.0 / n_classes


def consistency_loss(
    logits_orig: torch.Tensor, logits_aug: torch.Tensor, *, confidence: float, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """UDA's consistency term: (summed KL over the kept rows, number of rows kept).

    The target of a row is the prediction on the original text, sharpened by ``temperature``
    (``softmax(logits_orig / temperature)``; below 1 sharpens) and never differentiated; a row
    counts only when the unsharpened prediction's top probability is at least ``confidence``.
    The loss of a row is ``KL(target || softmax(logits_aug))``, so only ``logits_aug`` gets a
    gradient. Both logits are (B, K); the sum is returned so the caller chooses the normaliser.
    """
    if temperature <= 0:
        raise WarmstartError(f"--sharpen {temperature}: must be above 0")
    if logits_orig.shape != logits_aug.shape:
        raise ValueError(f"logits of shapes {tuple(logits_orig.shape)} and "
                         f"{tuple(logits_aug.shape)} do not pair up")
    with torch.no_grad():
        orig = logits_orig.detach().float()
        keep = orig.softmax(-1).amax(-1) >= confidence  # (B,)
        target = (orig / temperature).softmax(-1)  # (B, K)
    log_q = logits_aug.float().log_softmax(-1)  # (B, K)
    kl = F.kl_div(log_q, target, reduction="none").sum(-1)  # (B,), 0 * log 0 counts as 0
    return (kl * keep.to(kl.dtype)).sum(), keep.sum().to(kl.dtype)


# -- UDA: the batch source ---------------------------------------------------------------------


def _empty_like(item: Any) -> Any:
    """An encoded text with no tokens, in the shape of ``item`` (ids, or a tuple of id lists)."""
    return tuple([] for _ in item) if isinstance(item, tuple) else []


def _pad_to(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    """``t`` (B, T) padded on the right with ``value`` to (B, width)."""
    if t.shape[1] >= width:
        return t
    return F.pad(t, (0, width - t.shape[1]), value=value)


class ConsistencyBatches:
    """The loop's batch source for UDA: a labeled batch plus unlabeled (original, augmented) pairs.

    ``labeled`` is the labeled source (its batches are taken as they are); ``orig_ids[i]`` and
    ``aug_ids[i]`` are the body's encodings of unlabeled text ``i`` and of an augmented copy of
    it. Each step's batch holds the labeled rows (role 0), then ``round(ratio * batch_size)``
    unlabeled texts, each as an original row (role 1) directly followed by its augmented row
    (role 2), all padded to one length. Which unlabeled texts a step gets is a pure function of
    (seed, step): passes over the pool in an order drawn per pass, so resuming repeats it.

    The loop only reads the first ``TrainConfig.batch_size`` rows of a batch: set it to
    :attr:`rows_per_step`. Micro-batches (and processes) of an even size, with an even labeled
    batch size, never split a pair; a pair that is split is left out of that step's
    consistency loss.
    """

    def __init__(
        self,
        labeled: ClassificationBatches,
        orig_ids: Sequence[Any],
        aug_ids: Sequence[Any],
        *,
        ratio: float,
        seed: int,
    ) -> None:
        if len(orig_ids) != len(aug_ids):
            raise WarmstartError(f"{len(orig_ids)} unlabeled texts but {len(aug_ids)} augmented "
                                 "copies: give one copy per text")
        if not orig_ids:
            raise WarmstartError("consistency training needs unlabeled texts; the pool is empty")
        if ratio <= 0:
            raise WarmstartError(f"--consistency-ratio {ratio}: must be above 0")
        self.labeled = labeled
        self.body = labeled.body
        self.orig_ids = list(orig_ids)
        self.aug_ids = list(aug_ids)
        self.seed = seed
        self.n_pairs = max(1, round(ratio * labeled.batch_size))
        self._orig_len = np.array([encoded_length(x) for x in self.orig_ids], dtype=np.int64)
        self._aug_len = np.array([encoded_length(x) for x in self.aug_ids], dtype=np.int64)
        # What each of the body's tensors is padded with: the body's batch of an empty text.
        empty = self.body.batch([_empty_like(self.orig_ids[0])])
        self._pad_values = {k: int(v.reshape(-1)[0]) for k, v in empty.items()}
        self._orders: dict[int, np.ndarray] = {}

    @property
    def rows_per_step(self) -> int:
        """Rows of a full batch: the labeled batch size and two per unlabeled text."""
        return self.labeled.batch_size + 2 * self.n_pairs

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            rng = np.random.default_rng([self.seed, 11, epoch])
            self._orders = {k: v for k, v in self._orders.items() if k >= epoch - 1}
            self._orders[epoch] = rng.permutation(len(self.orig_ids))
        return self._orders[epoch]

    def unlabeled_rows(self, step: int) -> np.ndarray:
        """Indexes of the unlabeled texts of ``step``: the next ``n_pairs`` of the passes."""
        n = len(self.orig_ids)
        positions = np.arange(step * self.n_pairs, (step + 1) * self.n_pairs)
        return np.array([self._order(int(p // n))[p % n] for p in positions], dtype=np.int64)

    def train_batch(self, step: int) -> tuple[Prepared, int]:
        prepared, n_tokens = self.labeled.train_batch(step)
        labeled = prepared.tensors
        n_labeled = prepared.n_rows
        rows = self.unlabeled_rows(step)
        pairs = [x for i in rows for x in (self.orig_ids[i], self.aug_ids[i])]
        unlabeled = self.body.batch(pairs)
        n_rows = len(pairs)
        unlabeled["task"] = torch.zeros(n_rows, dtype=torch.long)
        unlabeled["y"] = torch.zeros(n_rows, dtype=torch.long)
        unlabeled["y_multi"] = torch.zeros((n_rows, labeled["y_multi"].shape[1]))
        unlabeled["role"] = torch.tensor([ORIGINAL, AUGMENTED] * len(rows), dtype=torch.long)
        labeled = {**labeled, "role": torch.full((n_labeled,), LABELED, dtype=torch.long)}
        tensors: dict[str, torch.Tensor] = {}
        for key, part in labeled.items():
            other = unlabeled[key]
            if key in self._pad_values:  # the body's (B, T) ids: one width for all rows
                width = max(part.shape[1], other.shape[1])
                part = _pad_to(part, width, self._pad_values[key])
                other = _pad_to(other, width, self._pad_values[key])
            tensors[key] = torch.cat([part, other])
        n_tokens += int(self._orig_len[rows].sum() + self._aug_len[rows].sum())
        norms = {"rows": float(n_labeled), "unlabeled": float(len(rows))}
        return Prepared(tensors=tensors, norms=norms), n_tokens

    def valid_batches(self, n: int) -> Sequence[Prepared]:
        """The labeled source's held-out batches (no ``role``: every row is labeled)."""
        return self.labeled.valid_batches(n)


# -- UDA: the module ---------------------------------------------------------------------------


def _pad_value(body: nn.Module) -> int:
    # EncoderBody pads ids with its tokenizer's pad id; WordVectorBody pads with 0.
    return int(getattr(body, "pad_id", 0))


def _select(batch: dict[str, torch.Tensor], rows: torch.Tensor, pad: int) -> dict[str, torch.Tensor]:
    """The ``rows`` of ``batch``, with id columns that are padding in all of them cut off."""
    out = {}
    for key, t in batch.items():
        t = t[rows]
        if t.dim() == 2 and not t.is_floating_point() and t.shape[1] > 1:
            used = (t != pad).any(0).nonzero()
            t = t[:, : int(used.max()) + 1 if len(used) else 1]
        out[key] = t
    return out


class ConsistencyClassifier(nn.Module):
    """UDA around a :class:`TextClassifier`: supervised loss + ``weight`` x consistency loss.

    Trains on :class:`ConsistencyBatches`: labeled rows give the classifier's own loss (with
    training-signal annealing by ``tsa``, one of :data:`TSA_SCHEDULES`), and each unlabeled
    pair adds :func:`consistency_loss` (``confidence``, ``temperature``), averaged over the
    global batch's pairs. The target comes from the original row without head dropout, and
    the prediction on the augmented row is made with it (the noise is the student's).
    Validation batches (no ``role``) are the classifier's alone. The
    classifier must have one single-label task; save it, not this wrapper.

    Logged: ``unsup_loss`` (mean consistency loss per pair, masked pairs counting 0) and
    ``unsup_kept_accuracy`` (the share of pairs confident enough to count; the loop names every
    ``_correct``/``_total`` share an accuracy).
    """

    def __init__(
        self,
        classifier: TextClassifier,
        *,
        weight: float = 1.0,
        confidence: float = 0.0,
        temperature: float = 1.0,
        tsa: str = "none",
    ) -> None:
        super().__init__()
        if len(classifier.tasks) != 1 or classifier.tasks[0].multi_label:
            raise WarmstartError("consistency training needs one single-label task; got "
                                 + ", ".join(f"{t.name}{' (multi-label)' if t.multi_label else ''}"
                                             for t in classifier.tasks))
        if weight < 0:
            raise WarmstartError(f"--consistency {weight}: must not be negative")
        if not 0.0 <= confidence <= 1.0:
            raise WarmstartError(f"--consistency-confidence {confidence}: must be in [0, 1]")
        if temperature <= 0:
            raise WarmstartError(f"--sharpen {temperature}: must be above 0")
        tsa_threshold(0.0, max(2, len(classifier.tasks[0].labels)), tsa)  # checks the name
        self.classifier = classifier
        self.weight = weight
        self.confidence = confidence
        self.temperature = temperature
        self.tsa = tsa
        self.n_classes = len(classifier.tasks[0].labels)

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This slice's share of the global batch's loss, and summed statistics."""
        if "role" not in batch:
            return self.classifier(batch, norms)  # type: ignore[no-any-return]
        clf = self.classifier
        pad = _pad_value(clf.body)
        role = batch["role"]
        # Even a slice without labeled rows goes through the classifier: its (zero) loss keeps
        # the slice's loss in the graph, so the loop's backward works on any slice.
        labeled = (role == LABELED).nonzero().squeeze(1)
        loss, stats = clf(_select(batch, labeled, pad), norms)
        # A pair is an original row directly followed by its augmented row; a micro-batch
        # boundary may split one, and then neither half counts here.
        paired = (role[:-1] == ORIGINAL) & (role[1:] == AUGMENTED)
        orig_rows = paired.nonzero().squeeze(1)
        n_pairs = len(orig_rows)
        if n_pairs:
            with torch.no_grad():
                logits_orig = clf.logits(_select(batch, orig_rows, pad))  # (P, K)
            aug = _select(batch, orig_rows + 1, pad)
            logits_aug = clf.head(clf.tasks[0].name)(clf.dropout(clf.body(aug)))  # (P, K)
            unsup, kept = consistency_loss(logits_orig, logits_aug, confidence=self.confidence,
                                           temperature=self.temperature)
            loss = loss + self.weight * unsup / max(norms.get("unlabeled", 0.0), 1.0)
        else:
            unsup = kept = loss.new_zeros(())
        stats["unsup_loss"] = unsup.detach()
        stats["unsup_total"] = torch.tensor(float(n_pairs))
        stats["unsup_kept_correct"] = kept.detach()
        stats["unsup_kept_total"] = torch.tensor(float(n_pairs))
        return loss, stats

    def on_step(self, progress: float) -> None:
        """Raise the annealing threshold with ``progress``; the classifier's own schedule too."""
        self.classifier.tsa = tsa_threshold(progress, self.n_classes, self.tsa)
        self.classifier.on_step(progress)

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The classifier's AdamW groups (this wrapper has no parameters of its own)."""
        return self.classifier.optimizer_groups(weight_decay)
