"""A word-vector classifier trained on the looked-up rows only, against whole tables.

    make demo                                     # once: its review vectors are the input
    python benchmarks/seen_rows.py                # --vectors runs/demo/review-vectors
    python benchmarks/seen_rows.py --vectors VECTORS_FOLDER --repeats 5

What auto's ``vectors-channel`` candidate (and each ``self-train-static`` student) runs:
``finetune(init=VECTORS, channels="static", dev_fraction=0)``, on the demo's reviews (the
built-in split of ``warmstart demo``): its 400 labels, and 2,400 reviews (the size of labels
plus pseudo-labels in a student). Each size is trained ``--repeats`` times each way,
alternating: with warmstart's training of the rows the batches look up
(``warmstart.transfer.trained_rows``), and with whole tables (that step replaced by nothing,
the code before it). Prints the median seconds of each, their ratio, and the largest
difference of the two classifiers' probabilities on 500 held-out reviews (the two must train
the same weights). Results with commit, CPU and date go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from provenance import stamp, write_json

from warmstart.demo import split_reviews
from warmstart.transfer.bodies import WordVectorBody
from warmstart.transfer.finetune import finetune

SIZES = {"400 labels": (200, 0), "2,400 reviews": (1200, 1)}  # per class, sample seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vectors", default="runs/demo/review-vectors",
                    help="a warmstart vectors folder (make demo writes this one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="runs/bench-seen-rows/results.json")
    args = ap.parse_args()
    if not (Path(args.vectors) / "warmstart.json").exists():
        raise SystemExit(f"--vectors {args.vectors}: not a warmstart vectors folder; "
                         "run `make demo` first or name another")
    test, rest, _ = split_reviews(1000)
    held_out = test.texts[:500]
    seen_rows = WordVectorBody.training_only_seen_rows
    whole = {"seen rows": seen_rows,
             "whole tables": lambda self, encoded: contextlib.nullcontext()}
    settings = {"vectors": args.vectors, "repeats": args.repeats, "sizes": SIZES}
    results: dict[str, Any] = {"settings": settings, **stamp(settings)}
    for size, (per_class, sample_seed) in SIZES.items():
        data = rest.sample_per_class(per_class, seed=sample_seed)
        seconds: dict[str, list[float]] = {mode: [] for mode in whole}
        probs: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for mode, method in whole.items():
                WordVectorBody.training_only_seen_rows = method  # type: ignore[method-assign,assignment]
                start = time.perf_counter()
                clf = finetune(data, init=args.vectors, channels="static", dev_fraction=0,
                               seed=0, progress=False).classifier
                seconds[mode].append(time.perf_counter() - start)
                probs.setdefault(mode, clf.predict_proba(held_out))
        WordVectorBody.training_only_seen_rows = seen_rows  # type: ignore[method-assign,assignment]
        fast, slow = (statistics.median(seconds[m]) for m in whole)
        gap = float(np.abs(probs["seen rows"] - probs["whole tables"]).max())
        results[size] = {"seconds": seconds, "median_seen_rows": fast,
                         "median_whole_tables": slow, "speedup": slow / fast,
                         "max_probability_difference": gap}
        print(f"{size}: seen rows {fast:.1f} s, whole tables {slow:.1f} s (medians of "
              f"{args.repeats}): {slow / fast:.2f}x; probabilities differ by at most {gap:.1e}",
              flush=True)
    write_json(args.out, results)
    print(f"{results['commit']}, {results['cpu']}, {results['date']} -> {args.out}")


if __name__ == "__main__":
    main()
