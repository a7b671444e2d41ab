"""Classification metrics: reports, decision thresholds, a confusion plot, text and files.

The figures are scikit-learn's (``sklearn.metrics`` with ``zero_division=0``: a ratio whose
denominator is zero counts as 0.0), so that they can be put beside published numbers without a
footnote. What this module adds is the report's layout, tie-aware top-1 accuracy
(:func:`correct_top1`), decision thresholds, the confusion plot and the files.

- Single-label (:func:`classification_report`): ``y_true`` and ``y_pred`` are class ids
  (integers in ``[0, len(labels))``) or label names. Macro averages run over the classes that
  occur in the truth or the predictions, as ``f1_score(average="macro")`` does; a class that
  occurs in neither still has its row (all zeros) in ``per_class``.
- Multi-label (:func:`multilabel_report`): indicator matrices of shape (N, K); macro averages
  run over all K labels, as scikit-learn does for indicator input.

    >>> report = classification_report([0, 1, 1], [0, 1, 0], ["neg", "pos"])
    >>> report["accuracy"], report["confusion"]
    (0.6666666666666666, [[1, 0], [1, 1]])
    >>> print(format_report(report))                                # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from warmstart.artifact import write_bytes_atomic, write_json_atomic
from warmstart.errors import WarmstartError

SINGLE = "single-label"
MULTI = "multi-label"
METRICS_FILE = "metrics.json"
CONFUSION_PLOT = "plots/confusion.png"
# Above this many classes the cells are too small to hold readable text.
_MAX_CELL_TEXT = 20


def correct_top1(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) bool: the true class scores highest, alone. A tie for the top counts as wrong, so
    a model that gives every class the same score (bf16 logits tie more often than one would
    think) scores 0, not the share of the class an argmax happens to pick."""
    top = scores.max(1)
    true = scores[np.arange(len(y)), y]
    return (true >= top) & ((scores == top[:, None]).sum(1) == 1)


def classification_report(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[str], *,
    scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of single-label predictions against the truth, as a JSON-ready dict.

    Keys: ``kind`` (``"single-label"``), ``n``, ``labels``, ``accuracy``,
    ``macro_precision``, ``macro_recall``, ``macro_f1``, ``weighted_precision``,
    ``weighted_recall``, ``weighted_f1`` (weighted by support), ``per_class`` (label name ->
    ``precision``, ``recall``, ``f1``, ``support``) and ``confusion`` (list of rows: row = true
    class, column = predicted class, in the order of ``labels``).

    With ``scores`` (N, K), the probabilities or logits ``y_pred`` came from, ``accuracy``
    counts a row whose top score is tied as wrong (:func:`correct_top1`) and ``ties`` says how
    many rows were; the other metrics read ``y_pred`` as given.
    """
    names = _check_labels(labels)
    k = len(names)
    t = _class_ids(y_true, names, "y_true")
    p = _class_ids(y_pred, names, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise WarmstartError(
            f"y_true has {t.shape[0]} items but y_pred has {p.shape[0]}; "
            "give one prediction per example"
        )
    if t.shape[0] == 0:
        raise WarmstartError("no examples to evaluate: y_true and y_pred are empty")
    from sklearn import metrics

    ids = list(range(k))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        t, p, labels=ids, average=None, zero_division=0
    )
    # Without ``labels`` scikit-learn averages over the classes present in the truth or the
    # predictions, which is what the macro and weighted figures are documented to do.
    macro = metrics.precision_recall_fscore_support(t, p, average="macro", zero_division=0)
    weighted = metrics.precision_recall_fscore_support(t, p, average="weighted", zero_division=0)
    tied: dict[str, int] = {}
    if scores is None:
        accuracy = float(metrics.accuracy_score(t, p))
    else:
        top = scores.max(1, keepdims=True)
        tied = {"ties": int(((scores == top).sum(1) > 1).sum())}
        accuracy = float(np.mean(correct_top1(scores, t)))
    with warnings.catch_warnings():
        # With one class scikit-learn warns that ``labels`` may be missing, though it is given.
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        confusion = metrics.confusion_matrix(t, p, labels=ids)
    return {
        "kind": SINGLE,
        "n": int(t.shape[0]),
        "labels": names,
        "accuracy": accuracy,
        **tied,
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "per_class": _per_class(names, precision, recall, f1, support),
        "confusion": confusion.tolist(),
    }


def multilabel_report(
    Y_true: ArrayLike, Y_pred: ArrayLike, labels: Sequence[str]
) -> dict[str, Any]:
    """Metrics of multi-label predictions: 0/1 (or boolean) indicator matrices of shape (N, K).

    Keys: ``kind`` (``"multi-label"``), ``n``, ``labels``, ``subset_accuracy`` (all K labels
    right), ``hamming_loss`` (share of wrong cells), ``micro_precision``, ``micro_recall``,
    ``micro_f1``, ``macro_precision``, ``macro_recall``, ``macro_f1``, ``samples_f1`` (F1 of
    each example, averaged; 0.0 for an example with no true and no predicted label) and
    ``per_class`` (label name -> ``precision``, ``recall``, ``f1``, ``support``).
    """
    names = _check_labels(labels)
    t = _indicator(Y_true, len(names), "Y_true")
    p = _indicator(Y_pred, len(names), "Y_pred")
    if t.shape != p.shape:
        raise WarmstartError(
            f"Y_true has {t.shape[0]} rows but Y_pred has {p.shape[0]}; "
            "give one row of predictions per example"
        )
    if t.shape[0] == 0:
        raise WarmstartError("no examples to evaluate: Y_true and Y_pred are empty")
    from sklearn import metrics

    ids = list(range(len(names)))
    # scikit-learn reads a single column as binary targets, not as an indicator matrix; an
    # all-zero extra column makes it an indicator matrix, and ``labels=ids`` leaves it out of
    # every figure.
    tt, pp = (t, p) if len(names) > 1 else (_pad_column(t), _pad_column(p))

    def prf(average: str | None) -> tuple[Any, ...]:
        return metrics.precision_recall_fscore_support(
            tt, pp, labels=ids, average=average, zero_division=0
        )

    precision, recall, f1, support = prf(None)
    micro, macro, samples = prf("micro"), prf("macro"), prf("samples")
    return {
        "kind": MULTI,
        "n": int(t.shape[0]),
        "labels": names,
        "subset_accuracy": float(metrics.accuracy_score(tt, pp)),
        "hamming_loss": float(metrics.hamming_loss(t, p)),
        "micro_precision": float(micro[0]),
        "micro_recall": float(micro[1]),
        "micro_f1": float(micro[2]),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "samples_f1": float(samples[2]),
        "per_class": _per_class(names, precision, recall, f1, support),
    }


def tune_thresholds(
    Y_true: ArrayLike,
    scores: ArrayLike,
    *,
    per_label: bool = False,
    grid: ArrayLike | None = None,
) -> float | np.ndarray:
    """The decision threshold(s) on probabilities that maximise F1 on development data.

    A label is predicted where ``score >= threshold``. ``Y_true`` is a 0/1 indicator matrix
    (N, K) (or a vector for one label) and ``scores`` the model's probabilities, same shape.
    With ``per_label=False`` one threshold maximises micro-F1 over all cells (a float); with
    ``per_label=True`` each label gets the threshold that maximises its own F1 (an array of K).

    Candidates are ``grid`` when given, otherwise 0.05, 0.10, ..., 0.95 and the midpoints
    between consecutive distinct scores (so any split of the scores can be chosen). Among
    equally good candidates the one closest to 0.5 wins, then the lower one. Each candidate
    costs a binary search over the sorted scores, so N=10,000 by K=20 takes well under a second.
    """
    t = _indicator(Y_true, None, "Y_true")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.shape != t.shape:
        raise WarmstartError(
            f"scores have shape {tuple(s.shape)} but Y_true has {tuple(t.shape)}; "
            "give one score per example and label"
        )
    if t.shape[0] == 0:
        raise WarmstartError("no examples to tune thresholds on: Y_true and scores are empty")
    if not np.all(np.isfinite(s)):
        raise WarmstartError("scores contain NaN or infinity; give finite probabilities")
    fixed = None if grid is None else np.asarray(grid, dtype=np.float64).ravel()
    if fixed is not None and fixed.size == 0:
        raise WarmstartError("grid: empty; give at least one candidate threshold")
    if not per_label:
        return _best_threshold(t.ravel(), s.ravel(), fixed)
    return np.array([_best_threshold(t[:, j], s[:, j], fixed) for j in range(t.shape[1])])


def plot_confusion(
    matrix: ArrayLike,
    labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """A confusion matrix as a PNG heat map at ``path`` (written atomically); returns the path.

    Rows are true classes, columns predicted ones. With ``normalize`` the colours show each
    row's shares (so rare classes are as visible as common ones) and the cells read
    ``count`` over ``share %``; otherwise colours and text are the counts. Cells carry text up
    to 20 classes; beyond that only the colours.
    """
    cm = np.asarray(matrix)
    names = [str(x) for x in labels]
    k = len(names)
    if cm.ndim != 2 or cm.shape != (k, k) or k == 0:
        raise WarmstartError(
            f"confusion matrix has shape {tuple(cm.shape)}; expected ({k}, {k}) "
            f"for {k} labels"
        )
    counts = cm.astype(np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(rows, 1)
    shown = shares if normalize else counts

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side = min(max(4.0, 0.55 * k + 2.5), 24.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), dpi=110)
    vmax = 1.0 if normalize else max(int(counts.max()), 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="share of the true class" if normalize else "count")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    long = k > 8 or max(len(n) for n in names) > 6
    ax.set_xticklabels(names, rotation=45 if long else 0, ha="right" if long else "center",
                       rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    if k <= _MAX_CELL_TEXT:
        size = 9 if k <= 10 else 7 if k <= 15 else 6
        for i in range(k):
            for j in range(k):
                text = f"{counts[i, j]}"
                if normalize:
                    text += f"\n{100 * shares[i, j]:.0f}%"
                # Dark cells get white text: the colour map runs from white to dark blue.
                dark = shown[i, j] > 0.55 * vmax
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if dark else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, buf.getvalue())
    return out


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of a report (as scikit-learn's ``classification_report`` prints):
    one row per class, then accuracy and the averages."""
    kind = report.get("kind")
    if kind not in (SINGLE, MULTI):
        raise WarmstartError(
            f"not a classification report (kind {kind!r}); make one with "
            "classification_report or multilabel_report"
        )
    per = report["per_class"]
    row_names = ["weighted avg"] if kind == SINGLE else ["subset accuracy"]
    width = max(len(name) for name in [*map(str, per), *row_names])
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for name, row in per.items():
        lines.append(_row(width, str(name), row["precision"], row["recall"], row["f1"],
                          row["support"]))
    lines.append("")
    n = report["n"]
    if kind == SINGLE:
        lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {report['accuracy']:>9.4f} {n:>9}")
        averages = ["macro", "weighted"]
    else:
        cells = n * len(per)
        lines.append(f"{'subset accuracy':>{width}} {'':>9} {'':>9} "
                     f"{report['subset_accuracy']:>9.4f} {n:>9}")
        lines.append(f"{'hamming loss':>{width}} {'':>9} {'':>9} "
                     f"{report['hamming_loss']:>9.4f} {cells:>9}")
        averages = ["micro", "macro"]
    for avg in averages:
        lines.append(_row(width, f"{avg} avg", report[f"{avg}_precision"],
                          report[f"{avg}_recall"], report[f"{avg}_f1"], n))
    if kind == MULTI:
        lines.append(f"{'samples avg':>{width}} {'':>9} {'':>9} {report['samples_f1']:>9.4f} "
                     f"{n:>9}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``metrics.json`` and, for a single-label report, ``plots/confusion.png`` into
    ``folder`` (created if needed); returns the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / METRICS_FILE
    write_json_atomic(metrics, report)
    paths = [metrics]
    if report.get("kind") == SINGLE:
        paths.append(plot_confusion(report["confusion"], report["labels"], out / CONFUSION_PLOT,
                                    title=f"confusion (n={report['n']})"))
    return paths


def _per_class(
    names: list[str], p: np.ndarray, r: np.ndarray, f: np.ndarray, support: np.ndarray
) -> dict[str, dict[str, Any]]:
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
               "support": int(support[i])}
        for i, name in enumerate(names)
    }


def _row(width: int, name: str, p: float, r: float, f: float, support: int) -> str:
    return f"{name:>{width}} {p:>9.4f} {r:>9.4f} {f:>9.4f} {support:>9}"


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise WarmstartError("labels: give a list of class names, not one string")
    names = [str(x) for x in labels]
    if not names:
        raise WarmstartError("labels: empty; give the class names in class-id order")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise WarmstartError(f"labels: duplicate names {dup}; each class needs its own name")
    return names


def _class_ids(y: ArrayLike, names: list[str], what: str) -> np.ndarray:
    """Class ids in ``[0, K)`` from ids or label names, checked."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise WarmstartError(
            f"{what}: expected a 1-D sequence of class ids, got shape {tuple(arr.shape)}; "
            "for indicator matrices use multilabel_report"
        )
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "UO":
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({str(v) for v in arr.tolist() if v not in index})
        if unknown:
            raise WarmstartError(
                f"{what}: labels {unknown[:5]} are not among the {len(names)} class names "
                f"{names[:10]}"
            )
        return np.array([index[v] for v in arr.tolist()], dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise WarmstartError(
            f"{what}: class ids must be integers (or label names), got dtype {arr.dtype}; "
            "convert predictions with argmax first"
        )
    ids = arr.astype(np.int64)
    bad = (ids < 0) | (ids >= len(names))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise WarmstartError(
            f"{what}: class id {int(ids[first])} at position {first} is out of range; "
            f"ids run from 0 to {len(names) - 1} for {len(names)} labels"
        )
    return ids


def _indicator(Y: ArrayLike, k: int | None, what: str) -> np.ndarray:
    """A boolean (N, K) matrix from a 0/1 indicator matrix (or a vector for one label)."""
    arr = np.asarray(Y)
    if arr.ndim == 1 and k is None:
        arr = arr[:, None]
    if arr.ndim != 2 or (k is not None and arr.shape[1] != k):
        want = f"(N, {k})" if k is not None else "(N, K)"
        raise WarmstartError(
            f"{what}: expected an indicator matrix of shape {want}, got {tuple(arr.shape)}"
        )
    if arr.size and not (arr.dtype.kind in "biuf" and np.all((arr == 0) | (arr == 1))):
        raise WarmstartError(f"{what}: an indicator matrix holds only 0 and 1 (or booleans)")
    return arr.astype(bool)


def _pad_column(Y: np.ndarray) -> np.ndarray:
    return np.hstack([Y, np.zeros((Y.shape[0], 1), dtype=Y.dtype)])


def _best_threshold(truth: np.ndarray, scores: np.ndarray, fixed: np.ndarray | None) -> float:
    order = np.sort(scores)
    if fixed is None:
        distinct = np.unique(order)
        grid = np.round(np.arange(1, 20) * 0.05, 2)
        candidates = np.unique(np.concatenate([grid, (distinct[:-1] + distinct[1:]) / 2]))
    else:
        candidates = np.unique(fixed)
    # Positives' scores sorted: how many score at least t is a binary search per candidate.
    pos = np.sort(scores[truth])
    n_pred = order.size - np.searchsorted(order, candidates, side="left")
    tp = pos.size - np.searchsorted(pos, candidates, side="left")
    den = (n_pred + pos.size).astype(np.float64)
    f1 = np.where(den > 0, 2.0 * tp / np.where(den > 0, den, 1.0), 0.0)
    best = np.flatnonzero(f1 == f1.max())
    # Ties: closest to 0.5, then the lower; lexsort sorts by its last key first. Distances are
    # rounded so that 0.3 and 0.7 count as equally far, as they are on paper.
    distance = np.round(np.abs(candidates[best] - 0.5), 12)
    pick = best[np.lexsort((candidates[best], distance))[0]]
    return float(candidates[pick])
