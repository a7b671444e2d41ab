"""Shared test fixtures: where the read-only real data lives."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

#: Hypothesis profiles for the fuzz tests (tests/fuzz). "short" is the default, what `make test`
#: runs: the fuzz tests take well under a minute together. "long" is the fuzzing campaign,
#: `pytest tests/fuzz --hypothesis-profile=long`: a hundred times the examples, no deadline.
#: Tests scale their own example counts from the profile's (tests/fuzz/fuzzkit.py).
#: Examples that failed once are kept in .hypothesis/ and tried first on every run.
SHORT_EXAMPLES = 20
for _name, _n in (("short", SHORT_EXAMPLES), ("long", 100 * SHORT_EXAMPLES)):
    settings.register_profile(
        _name, max_examples=_n, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
settings.load_profile("short")

#: ../shared/data beside the project root: real datasets, read-only (see its README.md).
#: WARMSTART_SHARED_DATA points elsewhere, e.g. for a clone made outside the project folder.
SHARED_DATA = Path(
    os.environ.get("WARMSTART_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def in_ci() -> bool:
    """Whether this is a CI run (``CI=1``), where a missing fixture is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing_data() -> str:
    return (f"shared data folder {SHARED_DATA} not found: put the real datasets there (the "
            "project's ../shared/data) or point WARMSTART_SHARED_DATA at them")


def pytest_configure(config: pytest.Config) -> None:
    """Under ``CI=1`` the run stops before any test when the real data is missing: the tests
    that read it would otherwise be skipped, and a CI run that skipped them proves nothing."""
    if in_ci() and not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"CI=1: {_missing_data()}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips the test when it is not there (outside CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(_missing_data())
    return SHARED_DATA


def write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path``, compressed by its suffix (.gz, .bz2, .xz)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if opener is None:
        path.write_bytes(raw)
    else:
        with opener(path, "wb") as f:
            f.write(raw)
    return path


def read_agnews(shared_data: Path) -> tuple[Any, Any]:
    """AG News' training and test sets (headerless TSV: text, label), one label map."""
    from warmstart.labeled import LabeledDataset

    folder = shared_data / "en" / "agnews"
    kw: dict[str, Any] = dict(text_field="0", label_field="1", has_header=False)
    train = LabeledDataset.read(folder / "train.tsv", **kw)
    return train, LabeledDataset.read(folder / "test.tsv", labels=train.labels, **kw)


def tfidf_lr_accuracy(train: Any, test: Any) -> float:
    """The trivial baseline a classifier test must clear, fitted here on the same training
    examples: TF-IDF of words and bigrams + logistic regression, its C picked by 3-fold
    cross-validation on the training examples (its own best setting, not a weak default).
    A tie for the top probability counts as wrong, as in warmstart's accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV

    from warmstart.evaluation.classification import correct_top1

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x = vectorizer.fit_transform(train.texts)
    folds = max(2, min(3, int(np.bincount(train.y).min())))
    model = LogisticRegressionCV(Cs=[0.1, 1.0, 10.0, 100.0], cv=folds, max_iter=3000)
    model.fit(x, train.y)
    probs = model.predict_proba(vectorizer.transform(test.texts))
    return float(correct_top1(probs, test.with_labels(train.labels).y).mean())
