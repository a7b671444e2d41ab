"""Heads fitted on frozen features: a penalised logistic regression (a probe) or class centroids.

A probe reads each text through a frozen body (:func:`features_of`) and fits scikit-learn's
logistic regression on those features (:func:`logistic_regression`); the fitted coefficients
become the classifier's linear head (:func:`fit_heads`), so the artifact predicts like any
other. A **prototype** head (Snell et al. 2017) scores a text by its squared distance to each
class's mean feature vector. That is a linear function of the features up to a term shared by
all classes: ``-|x - c_k|^2 = 2 c_k.x - |c_k|^2 - |x|^2``, so the head ``w_k = 2 c_k / T``,
``b_k = -|c_k|^2 / T`` predicts the nearest centroid exactly and its softmax is the softmax of
``-distance^2 / T`` (:func:`prototype_head`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.transfer.bodies import Body, TfidfBody, sorted_batches
from warmstart.transfer.classifier import Classifier, body_autocast
from warmstart.transfer.model import Regularisation, Task, TextClassifier
from warmstart.transfer.settings import FinetuneConfig

Splits = dict[str, tuple[LabeledDataset, LabeledDataset]]


@torch.inference_mode()
def features_of(
    body: Body, texts: list[str], *, batch_size: int = 64, sparse: bool = False,
    precision: str = "auto",
) -> Any:
    """(N, C) features of ``texts`` from a frozen body, in length-sorted batches; with
    ``sparse``, a TF-IDF body's come as a scipy sparse matrix (too wide to hold dense).
    An encoder runs in bf16 where ``precision`` says so (as :class:`Classifier` predicts)."""
    if sparse and isinstance(body, TfidfBody):
        return body.sparse_features(texts)
    body.eval()
    autocast = body_autocast(body, torch.device("cpu"), precision)
    out = np.zeros((len(texts), body.dim), dtype=np.float32)
    for rows, batch in sorted_batches(body, body.encode(texts), batch_size):
        with autocast:
            out[rows] = body(batch).float().numpy()
    return out


def logistic_regression(
    z: Any, y: np.ndarray, cfg: FinetuneConfig, *, task: str,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of a penalised logistic regression; C by 5-fold CV unless given."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    # scikit-learn >= 1.8 sets the penalty by l1_ratio: 0 is L2, 1 is L1, between: elastic net.
    l1_ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": cfg.l1_ratio}[cfg.penalty]
    solver = {"l2": "lbfgs", "l1": "liblinear", "elasticnet": "saga"}[cfg.penalty]
    if cfg.C:
        lr = LogisticRegression(C=cfg.C, l1_ratio=l1_ratio, solver=solver, max_iter=3000)
        lr.fit(z, y, sample_weight=sample_weight)
        return lr.coef_, lr.intercept_
    folds = int(min(5, np.bincount(y).min()))
    if folds < 2:
        raise WarmstartError(f"task {task}: a class has a single example, too few to choose C "
                             "by cross-validation; give --C")
    cv = LogisticRegressionCV(Cs=10, l1_ratios=(l1_ratio,), cv=folds, solver=solver,
                              scoring="accuracy", max_iter=3000, use_legacy_attributes=False)
    cv.fit(z, y, sample_weight=sample_weight)
    return cv.coef_, cv.intercept_


def linear_head(
    x: Any, y: np.ndarray, task: Task, cfg: FinetuneConfig, *,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, C), bias (K,)) of ``task``'s logistic regression on features ``x`` (dense,
    or a sparse TF-IDF matrix): the linear head that predicts what the regression does.

    With ``cfg.standardize`` dense features are standardised with their own mean and spread
    first, and that scaling is folded into the weights, so the head reads raw features.
    """
    if cfg.standardize and isinstance(x, np.ndarray):  # TF-IDF rows are already scaled
        mu, sigma = x.mean(0), x.std(0) + 1e-6
    else:
        mu, sigma = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    z = (x - mu) / sigma if isinstance(x, np.ndarray) else x
    k = len(task.labels)
    if task.multi_label:  # one regression per label
        fits = [logistic_regression(z, y[:, j], cfg, task=task.name, sample_weight=sample_weight)
                for j in range(k)]
        coef = np.concatenate([c for c, _ in fits])
        bias = np.concatenate([b for _, b in fits])
    else:
        coef, bias = logistic_regression(z, y, cfg, task=task.name, sample_weight=sample_weight)
        if coef.shape[0] == 1:  # one score for the second class; the first class's logit is 0
            coef = np.concatenate([np.zeros_like(coef), coef])
            bias = np.concatenate([np.zeros_like(bias), bias])
    # Fold the standardisation in: w.(x - mu)/sigma + b = (w/sigma).x + (b - w.mu/sigma).
    return coef / sigma, bias - (coef * (mu / sigma)).sum(1)


def probe(body: Body, task_list: list[Task], splits: Splits, cfg: FinetuneConfig,
          precision: str) -> Classifier:
    """Logistic regression on frozen features, folded into a linear head of the classifier."""
    model = TextClassifier(body, task_list, reg=Regularisation(dropout=0.0))
    fit_heads(model, splits, cfg, precision)
    return Classifier(model.eval(), precision=precision)


def prototype(body: Body, task_list: list[Task], splits: Splits, precision: str) -> Classifier:
    """Nearest class centroid of the frozen features, as a linear head (prototype_head)."""
    model = TextClassifier(body, task_list, reg=Regularisation(dropout=0.0))
    for t in task_list:
        tr = splits[t.name][0]
        x = features_of(body, tr.texts, precision=precision)
        model.set_head(t.name, *prototype_head(x, tr.y, len(t.labels)))
    return Classifier(model.eval(), precision=precision)


def fit_heads(model: TextClassifier, splits: Splits, cfg: FinetuneConfig, precision: str) -> None:
    """Set each task's head to a logistic regression fitted on the body's current features."""
    body = model.body
    for t in model.tasks:
        tr = splits[t.name][0]
        x = features_of(body, tr.texts, sparse=True, precision=precision)
        model.set_head(t.name, *linear_head(x, tr.y, t, cfg))
    body.train()


def prototype_head(features: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, C), bias (K,)) of the linear head that picks the nearest class centroid.

    The temperature ``T`` is the mean squared distance of the examples to their own
    centroid, so that logits are distances in units of a class's typical spread.
    """
    if np.asarray(y).ndim != 1:
        raise WarmstartError("--method prototype: multi-label data is not supported")
    counts = np.bincount(y, minlength=n_classes)
    if (counts == 0).any():
        missing = int(np.flatnonzero(counts == 0)[0])
        raise WarmstartError(f"--method prototype: class {missing} has no training example")
    x = features.astype(np.float64)
    centroids = np.stack([x[y == k].mean(0) for k in range(n_classes)])
    spread = float(((x - centroids[y]) ** 2).sum(1).mean()) or 1.0
    weight = 2.0 * centroids / spread
    bias = -(centroids ** 2).sum(1) / spread
    return weight.astype(np.float32), bias.astype(np.float32)
