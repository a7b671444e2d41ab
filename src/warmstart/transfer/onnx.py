"""A classifier exported to ONNX, predicting like any :class:`Classifier`.

``warmstart model export CLF --format onnx --out DIR`` writes an ONNX folder
(:mod:`warmstart.models.onnx`); :func:`load_onnx_classifier` reads it back as a classifier
that onnxruntime runs, so that ``predict`` and ``evaluate`` take it as they take ``CLF``:

    >>> clf = load_onnx_classifier("runs/sentiment-onnx")       # doctest: +SKIP
    >>> clf.predict(["a wonderful film", "dull"])               # doctest: +SKIP
    ['pos', 'neg']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.errors import WarmstartError
from warmstart.models.onnx import OnnxModel
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.model import Task


class OnnxClassifier(Classifier):
    """An exported classifier run by onnxruntime: its tasks, thresholds and probabilities are
    the original's (within 1e-4 in fp32); ``predict`` and ``predict_records`` are
    :class:`Classifier`'s."""

    def __init__(self, runtime: OnnxModel) -> None:
        # Not Classifier.__init__: there is no torch model, only what prediction reads.
        if not runtime.is_classifier:
            raise WarmstartError(
                f"{runtime.folder}: holds an encoder exported to ONNX, not a classifier; "
                "it embeds texts but has no labels to predict")
        self.runtime = runtime
        self.tasks = {t.name: Task(t.name, t.labels, t.multi_label) for t in runtime.tasks}
        self.thresholds = dict(runtime.thresholds)
        self.batch_size = runtime.batch_size
        self.precision = "fp32"  # what the graph holds; --precision has no say here

    @property
    def labels(self) -> list[str]:
        return self.task().labels

    def task(self, task: str | None = None) -> Task:
        return self.tasks[self.runtime.task(task).name]

    def predict_only(self) -> OnnxClassifier:
        return self  # the graph's precision is fixed at export

    def predict_proba(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(N, K) class probabilities (softmax), or per-label probabilities (multi-label)."""
        return self.runtime.predict_proba(texts, task=task)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) the features the heads read (the body's pooled vectors)."""
        return self.runtime.embed(texts)

    def export_hf(self, out: str | os.PathLike[str]) -> None:
        raise WarmstartError(f"{self.runtime.folder}: is an ONNX export; export the classifier "
                             "folder it was made from (its warmstart.json names it as parent)")

    def save_into(self, folder: Path, *, config: dict[str, Any], parent: str | None = None,
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
        raise WarmstartError(f"{self.runtime.folder}: is an ONNX export, which cannot be saved "
                             "as a torch classifier; use the classifier folder it was made from")


def load_onnx_classifier(path: str | os.PathLike[str], *, threads: int | None = None,
                         ) -> OnnxClassifier:
    """The classifier in ONNX folder ``path``; ``threads``: onnxruntime's intra-op threads."""
    return OnnxClassifier(OnnxModel.load(path, threads=threads))
