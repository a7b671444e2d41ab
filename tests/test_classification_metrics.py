"""Classification metrics: agreement with scikit-learn, threshold tuning, plot, text and files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from warmstart.errors import WarmstartError
from warmstart.evaluation.classification import (
    classification_report,
    format_report,
    multilabel_report,
    plot_confusion,
    tune_thresholds,
    write_report,
)

metrics = pytest.importorskip("sklearn.metrics")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _names(k: int) -> list[str]:
    return [f"class_{i}" for i in range(k)]


# ---------------------------------------------------------------- single-label vs sklearn


@pytest.mark.parametrize("seed", range(6))
def test_single_label_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    n = int(rng.integers(5, 300))
    # Skewed draws over a subset, so some classes are missing from the truth, the predictions
    # or both.
    y_true = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 0.5)))
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(k - 1, size=n))
    labels = _names(k)
    report = classification_report(y_true, y_pred, labels)

    ids = list(range(k))
    p, r, f, s = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0
    )
    for i, name in enumerate(labels):
        row = report["per_class"][name]
        assert row["precision"] == p[i]
        assert row["recall"] == r[i]
        assert row["f1"] == f[i]
        assert row["support"] == s[i]
    assert report["accuracy"] == metrics.accuracy_score(y_true, y_pred)
    assert report["macro_f1"] == metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert report["macro_precision"] == metrics.precision_score(
        y_true, y_pred, average="macro", zero_division=0
    )
    assert report["macro_recall"] == metrics.recall_score(
        y_true, y_pred, average="macro", zero_division=0
    )
    assert report["weighted_f1"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="weighted", zero_division=0), rel=1e-12
    )
    assert report["confusion"] == metrics.confusion_matrix(y_true, y_pred, labels=ids).tolist()
    assert report["n"] == n
    json.dumps(report)  # plain Python types only


def test_single_label_absent_classes_and_names() -> None:
    labels = ["a", "b", "c", "d"]
    # "c" only predicted, "d" nowhere: d has an all-zero row and stays out of the macro mean.
    y_true = ["a", "a", "b", "b", "b"]
    y_pred = ["a", "c", "b", "b", "a"]
    report = classification_report(y_true, y_pred, labels)
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["c"]["support"] == 0
    assert report["macro_f1"] == metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert report["confusion"] == [[1, 0, 1, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert report == classification_report([0, 0, 1, 1, 1], [0, 2, 1, 1, 0], labels)


def _agnews_predictions(shared_data: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """AG News test labels and a TF-IDF + logistic regression's probabilities for them,
    fitted on 2,000 training examples: real predictions, with real mistakes."""
    from conftest import read_agnews
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = read_agnews(shared_data)
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    model = LogisticRegression(max_iter=1000).fit(
        vectorizer.fit_transform(train.texts[:2000]), train.y[:2000]
    )
    return train.labels, test.y, model.predict_proba(vectorizer.transform(test.texts))


def test_reports_equal_sklearn_on_real_predictions(shared_data: Path) -> None:
    labels, y_true, probs = _agnews_predictions(shared_data)
    y_pred = probs.argmax(1)
    report = classification_report(y_true, y_pred, labels, scores=probs)
    ids = list(range(len(labels)))
    expected = metrics.classification_report(
        y_true, y_pred, labels=ids, target_names=labels, output_dict=True, zero_division=0
    )
    assert 0.5 < report["accuracy"] < 1.0  # a real classifier: right often, not always
    assert report["accuracy"] == expected["accuracy"]  # no ties among real probabilities
    for name in labels:
        ours, theirs = report["per_class"][name], expected[name]
        assert (ours["precision"], ours["recall"], ours["f1"], ours["support"]) == (
            theirs["precision"], theirs["recall"], theirs["f1-score"], theirs["support"]
        )
    for avg in ("macro", "weighted"):
        theirs = expected[f"{avg} avg"]
        assert (report[f"{avg}_precision"], report[f"{avg}_recall"], report[f"{avg}_f1"]) == (
            theirs["precision"], theirs["recall"], theirs["f1-score"]
        )
    assert report["confusion"] == metrics.confusion_matrix(y_true, y_pred, labels=ids).tolist()

    # The same probabilities as multi-label predictions: every class scored 0.3 or more.
    Y_true = np.eye(len(labels), dtype=int)[y_true]
    Y_pred = (probs >= 0.3).astype(int)
    report = multilabel_report(Y_true, Y_pred, labels)
    expected = metrics.classification_report(
        Y_true, Y_pred, target_names=labels, output_dict=True, zero_division=0
    )
    for name in labels:
        ours, theirs = report["per_class"][name], expected[name]
        assert (ours["precision"], ours["recall"], ours["f1"], ours["support"]) == (
            theirs["precision"], theirs["recall"], theirs["f1-score"], theirs["support"]
        )
    for avg in ("micro", "macro"):
        theirs = expected[f"{avg} avg"]
        assert (report[f"{avg}_precision"], report[f"{avg}_recall"], report[f"{avg}_f1"]) == (
            theirs["precision"], theirs["recall"], theirs["f1-score"]
        )
    assert report["samples_f1"] == expected["samples avg"]["f1-score"]
    assert report["subset_accuracy"] == metrics.accuracy_score(Y_true, Y_pred)
    assert report["hamming_loss"] == metrics.hamming_loss(Y_true, Y_pred)


def test_multilabel_with_one_label() -> None:
    # scikit-learn reads one column as binary targets; the report still treats it as one label.
    report = multilabel_report([[1], [0], [1]], [[1], [1], [0]], ["spam"])
    assert report["per_class"]["spam"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                           "support": 2}
    assert (report["micro_f1"], report["macro_f1"]) == (0.5, 0.5)
    assert report["samples_f1"] == pytest.approx(1 / 3)
    assert report["subset_accuracy"] == pytest.approx(1 / 3)
    assert report["hamming_loss"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------- multi-label vs sklearn


@pytest.mark.parametrize("seed", range(6))
def test_multilabel_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(2, 8))
    n = int(rng.integers(3, 200))
    rates = rng.uniform(0.0, 0.6, size=k)
    rates[0] = 0.0  # a label that is never true
    Y_true = (rng.random((n, k)) < rates).astype(int)
    Y_pred = np.where(rng.random((n, k)) < 0.7, Y_true, rng.random((n, k)) < 0.2).astype(int)
    Y_pred[:, -1] = 0  # a label that is never predicted
    labels = _names(k)
    report = multilabel_report(Y_true, Y_pred, labels)

    p, r, f, s = metrics.precision_recall_fscore_support(
        Y_true, Y_pred, average=None, zero_division=0
    )
    for i, name in enumerate(labels):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            p[i], r[i], f[i], s[i]
        )
    for avg in ("micro", "macro"):
        assert report[f"{avg}_f1"] == metrics.f1_score(
            Y_true, Y_pred, average=avg, zero_division=0
        )
        assert report[f"{avg}_precision"] == metrics.precision_score(
            Y_true, Y_pred, average=avg, zero_division=0
        )
        assert report[f"{avg}_recall"] == metrics.recall_score(
            Y_true, Y_pred, average=avg, zero_division=0
        )
    assert report["samples_f1"] == pytest.approx(
        metrics.f1_score(Y_true, Y_pred, average="samples", zero_division=0), rel=1e-12
    )
    assert report["subset_accuracy"] == metrics.accuracy_score(Y_true, Y_pred)
    assert report["hamming_loss"] == pytest.approx(metrics.hamming_loss(Y_true, Y_pred), rel=1e-12)
    json.dumps(report)


def test_multilabel_accepts_booleans() -> None:
    Y = np.array([[True, False], [False, True], [True, True]])
    report = multilabel_report(Y, Y, ["x", "y"])
    assert report["micro_f1"] == 1.0 and report["subset_accuracy"] == 1.0
    assert report["hamming_loss"] == 0.0


# --------------------------------------------------------------------- threshold tuning


def _separable(rng: np.random.Generator, n: int, cut: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.random(n) < 0.4
    scores = np.where(truth, rng.uniform(cut, 1.0, n), rng.uniform(0.0, cut, n))
    return truth.astype(int), scores


def test_global_threshold_separates() -> None:
    rng = np.random.default_rng(0)
    truth, scores = _separable(rng, 6000, 0.3)
    Y, S = truth.reshape(-1, 3), scores.reshape(-1, 3)
    t = tune_thresholds(Y, S)
    assert isinstance(t, float)
    assert S[Y == 0].max() < t <= S[Y == 1].min()
    assert metrics.f1_score(Y.ravel(), (S >= t).ravel().astype(int)) == 1.0


def test_per_label_thresholds_separate() -> None:
    rng = np.random.default_rng(1)
    cuts = [0.2, 0.45, 0.7, 0.85]
    cols = [_separable(rng, 2000, c) for c in cuts]
    Y = np.stack([c[0] for c in cols], axis=1)
    S = np.stack([c[1] for c in cols], axis=1)
    t = tune_thresholds(Y, S, per_label=True)
    assert isinstance(t, np.ndarray) and t.shape == (4,)
    for j in range(4):
        assert S[Y[:, j] == 0, j].max() < t[j] <= S[Y[:, j] == 1, j].min()
    assert multilabel_report(Y, (S >= t).astype(int), _names(4))["micro_f1"] == 1.0
    # One global threshold cannot separate all four labels at once.
    g = tune_thresholds(Y, S)
    assert multilabel_report(Y, (S >= g).astype(int), _names(4))["micro_f1"] < 1.0


def test_threshold_ties_go_to_half_and_grid_is_used() -> None:
    # Every threshold in (0.2, 0.8] separates; of the candidates, 0.5 is the closest to 0.5.
    Y = np.array([[0], [1]])
    S = np.array([[0.2], [0.8]])
    assert tune_thresholds(Y, S) == 0.5
    assert tune_thresholds(Y, S, grid=[0.3, 0.7]) == 0.3  # equally far: the lower one
    assert tune_thresholds(Y, S, grid=[0.1, 0.65, 0.9]) == 0.65
    assert tune_thresholds(Y.ravel(), S.ravel()) == 0.5  # a vector is one label


def test_threshold_tuning_is_fast() -> None:
    rng = np.random.default_rng(2)
    Y = (rng.random((10_000, 20)) < 0.2).astype(int)
    S = np.clip(0.35 * Y + rng.random((10_000, 20)) * 0.65, 0.0, 1.0)
    start = time.perf_counter()
    tune_thresholds(Y, S)
    tune_thresholds(Y, S, per_label=True)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------ plot and files


def _check_png(path: Path) -> np.ndarray:
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    return image


@pytest.mark.parametrize("k", [3, 25])
def test_plot_confusion_writes_png(tmp_path: Path, k: int) -> None:
    rng = np.random.default_rng(k)
    cm = rng.integers(0, 50, size=(k, k))
    cm[0] = 0  # a class with no examples must not divide by zero
    labels = [f"a rather long label {i}" for i in range(k)]
    out = plot_confusion(cm, labels, tmp_path / "sub" / "cm.png", title="test")
    assert out == tmp_path / "sub" / "cm.png"
    _check_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["cm.png"]  # no temporary left behind


def test_plot_confusion_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match="shape"):
        plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "cm.png")


def test_format_report_lists_labels_and_accuracy() -> None:
    labels = ["negative", "neutral", "positive"]
    report = classification_report([0, 1, 2, 2, 1], [0, 1, 2, 1, 1], labels)
    text = format_report(report)
    for name in labels + ["accuracy", "macro avg", "weighted avg"]:
        assert name in text
    assert f"{report['accuracy']:.4f}" in text

    ml = multilabel_report([[1, 0], [0, 1], [1, 1]], [[1, 0], [0, 0], [1, 1]], ["sports", "tech"])
    text = format_report(ml)
    for name in ["sports", "tech", "subset accuracy", "hamming loss", "micro avg", "macro avg",
                 "samples avg"]:
        assert name in text
    assert f"{ml['subset_accuracy']:.4f}" in text
    with pytest.raises(WarmstartError):
        format_report({"accuracy": 1.0})


def test_write_report(tmp_path: Path) -> None:
    report = classification_report([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"])
    paths = write_report(report, tmp_path / "eval")
    folder = tmp_path / "eval"
    assert paths == [folder / "metrics.json", folder / "plots" / "confusion.png"]
    assert json.loads(paths[0].read_text(encoding="utf-8")) == report
    _check_png(paths[1])

    ml = multilabel_report([[1, 0], [0, 1]], [[1, 0], [1, 1]], ["x", "y"])
    paths = write_report(ml, tmp_path / "ml")
    assert paths == [tmp_path / "ml" / "metrics.json"]
    assert json.loads(paths[0].read_text(encoding="utf-8")) == ml


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: classification_report([], [], ["a", "b"]), "empty"),
        (lambda: classification_report([0, 1], [0], ["a", "b"]), "2 items but y_pred has 1"),
        (lambda: classification_report([0, 2], [0, 1], ["a", "b"]), "out of range"),
        (lambda: classification_report([0, -1], [0, 1], ["a", "b"]), "out of range"),
        (lambda: classification_report(["a", "z"], ["a", "b"], ["a", "b"]), "'z'"),
        (lambda: classification_report([0.0, 1.0], [0, 1], ["a", "b"]), "integers"),
        (lambda: classification_report([0, 1], [0, 1], ["a", "a"]), "duplicate"),
        (lambda: classification_report([0, 1], [0, 1], []), "labels"),
        (lambda: multilabel_report(np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"]), "empty"),
        (lambda: multilabel_report([[1, 0]], [[1, 0], [0, 1]], ["a", "b"]), "rows"),
        (lambda: multilabel_report([[1, 0]], [[1, 0]], ["a", "b", "c"]), r"\(N, 3\)"),
        (lambda: multilabel_report([[2, 0]], [[1, 0]], ["a", "b"]), "only 0 and 1"),
        (lambda: tune_thresholds(np.zeros((0, 2)), np.zeros((0, 2))), "empty"),
        (lambda: tune_thresholds([[1, 0]], [[0.5, 0.5], [0.1, 0.2]]), "shape"),
        (lambda: tune_thresholds([[1, 0]], [[np.nan, 0.5]]), "NaN"),
        (lambda: tune_thresholds([[1, 0]], [[0.9, 0.5]], grid=[]), "grid"),
    ],
)
def test_bad_input_raises_warmstart_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(WarmstartError, match=match):
        call()
