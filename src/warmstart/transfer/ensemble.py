"""Several classifiers of one task as one: their class probabilities, averaged with weights.

Classifiers that read texts differently (TF-IDF of the words, averaged static word vectors, a
contextual encoder) make errors that differ, so the weighted mean of their probabilities is
often right where each alone is not. ``--recipe auto`` saves what it chose as an ensemble when
more than one member was kept; it loads, predicts and evaluates like any classifier:

    >>> clf = Classifier.load("runs/auto")                      # doctest: +SKIP
    >>> clf.members                                             # doctest: +SKIP
    {'tfidf': <Classifier>, 'pairs-minilm': <Classifier>}

The folder holds each member as a classifier folder of its own under ``members/NAME/`` and,
in ``warmstart.json``, the members' names and weights (``config.ensemble``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.artifact import read_meta, write_meta
from warmstart.errors import WarmstartError
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.model import Task

MEMBERS_DIR = "members"


class Ensemble(Classifier):
    """Single-task classifiers with the same labels; predicts the weighted mean of their
    probabilities. ``weights`` are normalised to sum to 1."""

    def __init__(self, members: dict[str, Classifier], weights: Sequence[float], *,
                 precision: str = "auto") -> None:
        if not members:
            raise WarmstartError("an ensemble needs at least one member")
        if len(weights) != len(members):
            raise WarmstartError(f"{len(members)} members but {len(weights)} weights")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise WarmstartError(f"ensemble weights {list(weights)}: must be >= 0, not all 0")
        first = next(iter(members.values())).task()
        for name, m in members.items():
            if len(m.tasks) != 1 or m.task().labels != first.labels or m.task().multi_label:
                raise WarmstartError(f"ensemble member {name}: needs one single-label task "
                                     f"with the labels {first.labels}")
        self.members = dict(members)
        self.weights = (w / w.sum()).tolist()
        self.tasks = {first.name: first}
        self.thresholds: dict[str, float] = {}
        self.batch_size = 64
        self._precision = precision
        self.precision = precision

    @property  # type: ignore[override]
    def precision(self) -> str:
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._precision = value
        for m in self.members.values():
            m.precision = value

    def predict_only(self) -> Ensemble:
        for m in self.members.values():
            m.predict_only()
        return self

    @property
    def labels(self) -> list[str]:
        return next(iter(self.tasks.values())).labels

    def task(self, task: str | None = None) -> Task:
        only = next(iter(self.tasks.values()))
        if task is not None and task != only.name:
            raise WarmstartError(f"--task {task}: this classifier has {only.name}")
        return only

    def predict_proba(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(N, K) weighted mean of the members' class probabilities."""
        self.task(task)
        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for w, m in zip(self.weights, self.members.values(), strict=True):
            if w > 0:
                out += w * m.predict_proba(texts)
        return out.astype(np.float32)

    def export_hf(self, out: str | os.PathLike[str]) -> None:
        names = ", ".join(f"{MEMBERS_DIR}/{n}" for n in self.members)
        raise WarmstartError(
            f"this classifier is an ensemble of {len(self.members)} ({names}); Hugging Face's "
            "BertForSequenceClassification holds one model: export an encoder member's folder")

    # -- artifact --------------------------------------------------------------------------
    def save_into(self, folder: Path, *, config: dict[str, Any], parent: str | None = None,
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Each member into ``members/NAME/``, and ``warmstart.json`` naming them."""
        for name, m in self.members.items():
            sub = folder / MEMBERS_DIR / name
            sub.mkdir(parents=True)
            m.save_into(sub, config={"ensemble_member": name}, parent=parent)
        spec = [{"name": n, "weight": w} for n, w in zip(self.members, self.weights, strict=True)]
        return write_meta(folder, kind="classifier", parent=parent, data=data,
                          config={"ensemble": spec,
                                  "tasks": [t.to_dict() for t in self.tasks.values()],
                                  "thresholds": {}, **config})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, precision: str = "auto") -> Ensemble:
        folder = Path(path)
        spec = read_meta(folder, kind="classifier")["config"].get("ensemble")
        if not isinstance(spec, list) or not spec:
            raise WarmstartError(f"{folder}: not an ensemble classifier (no config.ensemble)")
        members, weights = {}, []
        for item in spec:
            name = str(item.get("name", ""))
            sub = folder / MEMBERS_DIR / name
            if not name or not sub.is_dir():
                raise WarmstartError(f"{folder}: ensemble member {name!r} has no folder {sub}")
            members[name] = Classifier.load(sub, precision=precision)
            weights.append(float(item.get("weight", 0.0)))
        return cls(members, weights, precision=precision)
