"""Validation curves of a fixed-time CPU run of each pretraining objective on one corpus.

    python benchmarks/pretrain_curves.py --minutes 20 \
        --corpus ../shared/data/en/imdb/unsup.txt.gz --work /tmp/warmstart-curves

Runs ``warmstart pretrain`` once per objective (one after the other, the same model size,
batch, tokenizer and time budget), then prints a table of the final validation figures and
draws every objective's validation loss against training tokens into one PNG. The loss of
each objective measures a different task, so each gets its own panel.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

OBJECTIVES = ("mlm", "electra", "clm", "dae")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="../shared/data/en/imdb/unsup.txt.gz")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--size", default="small")
    ap.add_argument("--work", default="/tmp/warmstart-curves")
    ap.add_argument("--plot", default="docs/img/pretrain_curves.png")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more pretrain options")
    args = ap.parse_args()
    work = Path(args.work)
    for objective in args.objectives:
        out = work / objective
        if (out / "warmstart.json").exists():
            print(f"{objective}: already done in {out}", flush=True)
            continue
        cmd = [sys.executable, "-m", "warmstart", "pretrain", args.corpus, "--out", str(out),
               "--objective", objective, "--size", args.size, "--lowercase",
               "--time-budget", f"{args.minutes}m", "--eval-every", "100", "--quiet",
               "--cache-dir", str(work / "cache"), *args.extra]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    report(work, args.objectives, Path(args.plot))


def report(work: Path, objectives: list[str], plot: Path) -> None:
    rows = []
    curves = {}
    for objective in objectives:
        path = work / objective / "metrics.jsonl"
        if not path.exists():
            continue
        history = [json.loads(line) for line in path.read_text().splitlines()]
        valid = [r for r in history if "valid_loss" in r]
        train = [r for r in history if "tokens_per_second" in r]
        curves[objective] = valid
        speed = sorted(r["tokens_per_second"] for r in train)[len(train) // 2] if train else 0
        acc = {k: v for k, v in valid[-1].items() if k.endswith("accuracy")}
        rows.append((objective, valid[-1]["step"], valid[-1]["tokens"], valid[0]["valid_loss"],
                     valid[-1]["valid_loss"], speed, acc))
    print(f"{'objective':9} {'steps':>6} {'tokens':>10} {'first valid':>11} {'last valid':>10} "
          f"{'tok/s (median)':>14}  accuracies")
    for o, steps, tokens, first, last, speed, acc in rows:
        accs = ", ".join(f"{k.removeprefix('valid_')} {v:.3f}" for k, v in acc.items())
        print(f"{o:9} {steps:>6} {tokens:>10,} {first:>11.3f} {last:>10.3f} {speed:>14,.0f}  {accs}")
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.4), dpi=110)
    for ax, (objective, valid) in zip(list(getattr(axes, "flat", [axes])), curves.items(), strict=True):
        ax.plot([r["tokens"] / 1e6 for r in valid], [r["valid_loss"] for r in valid], marker=".")
        ax.set_title(objective)
        ax.set_xlabel("training tokens (millions)")
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot)
    print(f"wrote {plot}")


if __name__ == "__main__":
    main()
