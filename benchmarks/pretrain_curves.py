"""Validation curves of a fixed-time CPU run of each pretraining objective on one corpus.

    python benchmarks/pretrain_curves.py --minutes 20 \
        --corpus ../shared/data/en/imdb/unsup.txt.gz --work /tmp/warmstart-curves

Runs ``warmstart pretrain`` once per objective (one after the other, the same model size,
batch, tokenizer and time budget), then prints a table of the final validation figures and
draws every objective's validation loss against training tokens into one PNG. The loss of
each objective measures a different task, so each gets its own panel.

Validation losses of different objectives cannot be compared, so with ``--probe DIR`` (a
folder with train.tsv and test.tsv, e.g. ``../shared/data/en/sst2-sentences``) each model is
also scored the way it will be used: mean-pooled hidden states of the frozen model, fed to a
logistic regression trained on train.tsv and tested on test.tsv, next to the same probe on a
randomly initialised model of the same shape and tokenizer (what pretraining must beat).

A model an earlier run left in ``--work`` is reused only if it was made (or begun) on the same
commit, CPU and settings (its stamp is ``--work/OBJECTIVE.provenance.json``); otherwise it is
moved aside to ``OBJECTIVE.stale-COMMIT`` and pretrained again (``--reuse-any`` keeps it and
says so). ``--json PATH`` also writes the table and the probe scores, with their provenance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from provenance import describe, folder_stamp, keep_folder, stamp, stamp_folder, write_json

OBJECTIVES = ("mlm", "electra", "clm", "dae")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="../shared/data/en/imdb/unsup.txt.gz")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--size", default="small")
    ap.add_argument("--work", default="/tmp/warmstart-curves")
    ap.add_argument("--plot", default="docs/img/pretrain_curves.png")
    ap.add_argument("--probe", help="folder with train.tsv/test.tsv to score the models on")
    ap.add_argument("--also", nargs="*", default=[],
                    help="more model folders to probe, e.g. an imported checkpoint for reference")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep models made on other commits, CPUs or settings (says which)")
    ap.add_argument("--json", help="also write the table and probe scores, with provenance")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more pretrain options")
    args = ap.parse_args()
    settings = {k: v for k, v in vars(args).items() if k not in ("work", "plot", "json")}
    prov = stamp(settings, "tokenizers", "scikit-learn")
    print(describe(prov), flush=True)
    work = Path(args.work)
    for objective in args.objectives:
        out = work / objective
        # What the model depends on besides the code: reused only if made of these.
        made = {"corpus": args.corpus, "minutes": args.minutes, "size": args.size,
                "extra": args.extra, "objective": objective}
        if not keep_folder(out, made, reuse_any=args.reuse_any):
            stamp_folder(out, made, "tokenizers")
        if (out / "warmstart.json").exists():
            print(f"{objective}: already done in {out}", flush=True)
            continue
        cmd = [sys.executable, "-m", "warmstart", "pretrain", args.corpus, "--out", str(out),
               "--objective", objective, "--size", args.size, "--lowercase",
               "--time-budget", f"{args.minutes}m", "--eval-every", "100", "--quiet",
               "--cache-dir", str(work / "cache"), *args.extra]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    results: dict[str, Any] = {"objectives": report(work, args.objectives, Path(args.plot))}
    if args.probe:
        results["probe"] = probe([work / o for o in args.objectives] + [Path(p) for p in args.also],
                                 Path(args.probe))
    if args.json:
        write_json(args.json, {"results": results, **prov})


def report(work: Path, objectives: list[str], plot: Path) -> dict[str, Any]:
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
    table = {o: {"steps": steps, "tokens": tokens, "first_valid_loss": first,
                 "last_valid_loss": last, "tokens_per_s_median": speed, **acc,
                 "made": folder_stamp(work / o)}
             for o, steps, tokens, first, last, speed, acc in rows}
    if not curves:
        return table
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
    return table


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def pooled_features(model, tokenizer, texts: list[str], max_len: int = 128):  # type: ignore[no-untyped-def]
    """Mean of the last hidden states over each text's tokens, (N, C) as numpy."""
    import numpy as np
    import torch

    from warmstart.models.transformer import Encoder

    model.eval()
    pad = tokenizer.token_to_id("[PAD]") or 0
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tokenizer.encode_batch(texts[i:i + 64])
            ids = [e.ids[:max_len] for e in enc]
            width = max(len(x) for x in ids)
            batch = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]).bool()
            if isinstance(model, Encoder):
                hidden = model(batch, attention_mask=mask)
            else:  # a causal decoder: right padding never reaches the real tokens
                hidden = model(batch)
            m = mask.unsqueeze(-1).float()
            out.append(((hidden * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def probe(folders: list[Path], data: Path) -> dict[str, Any]:
    """Linear-probe test accuracy of each model, and of a random model of the same shape."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from warmstart.models.io import load_pretrained

    train_x, train_y = read_tsv(data / "train.tsv")
    test_x, test_y = read_tsv(data / "test.tsv")
    majority = max(np.mean(test_y), 1 - np.mean(test_y))

    def score(model, tokenizer) -> float:  # type: ignore[no-untyped-def]
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=8, l1_ratios=(0.0,), scoring="accuracy", use_legacy_attributes=False,
            max_iter=2000))
        clf.fit(pooled_features(model, tokenizer, train_x), train_y)
        return float(clf.score(pooled_features(model, tokenizer, test_x), test_y))

    print(f"linear probe on {data} (train {len(train_x):,}, test {len(test_x):,}, "
          f"majority class {majority:.3f})")
    scores: dict[str, Any] = {"data": str(data), "majority": float(majority)}
    for folder in folders:
        if not (folder / "warmstart.json").exists() and not (folder / "config.json").exists():
            continue
        loaded = load_pretrained(folder)
        torch.manual_seed(0)
        random_model = type(loaded.model)(loaded.model.config)
        pretrained = score(loaded.model, loaded.tokenizer)
        random_init = score(random_model, loaded.tokenizer)
        print(f"{folder.name:9} pretrained {pretrained:.3f}   "
              f"random init {random_init:.3f}", flush=True)
        scores[str(folder)] = {"pretrained": pretrained, "random_init": random_init}
    return scores


if __name__ == "__main__":
    main()
