"""Which way of choosing among ``--recipe auto``'s cross-validated candidates generalises,
measured on dev splits (never a test set).

    python benchmarks/auto_choice_dev.py --seeds 0 1 2 3 4 --encoder runs/demo/encoder \\
        --out runs/choice-dev-demo                       # the demo's setting, its dev split
    python benchmarks/auto_choice_dev.py --data runs/fewshot-data/online_shopping \\
        --shots 8 64 --seeds 0 1 2 --out runs/choice-dev-shopping

The cells are those of ``demo_dev.py`` (the demo's reviews with the test set dropped, or a
Chinese set's dev split). In each, auto cross-validates its candidates on the labels as it
does (``--budget`` seconds), then every rule below picks from the same cross-validation
table, and each pick is fitted on all labels and scored on the dev split:

- ``shipped``: the rule ``auto`` ships (ties within a paired standard error go to the default,
  else to the cheapest);
- ``max``: the best cross-validated of the ensembles and the self-training and pair-phase
  candidates, no tie rule;
- ``default-family``: ties go to the best of those that are the default or contain it (an
  ensemble with the default as a member), else to the cheapest;
- ``ties-half-se``: the shipped rule with ties within half a paired standard error;
- ``default``: the default recipe, whatever the folds say.

Where the budget did not cross-validate the default, every rule takes it (as ``auto`` does).
Prints per rule the mean dev accuracy and the paired difference to ``shipped`` with a 95%
interval, and writes ``OUT/results.json`` with commit, CPU and date.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_dev import demo_cases, folder_cases  # noqa: E402
from paired import paired_ci  # noqa: E402
from provenance import stamp  # noqa: E402


def rules() -> dict[str, Callable[[list[Any], str | None], str]]:
    """Each rule: (the cross-validation scores, the default's name) -> the name it picks."""
    from warmstart.transfer import auto
    from warmstart.transfer.candidates import is_one_of

    def pool(scores: list[Any]) -> list[Any]:
        return [s for s in scores if s.repeats_done and (s.members or is_one_of(s.name, auto._FEW))]

    def not_run(scores: list[Any], default: str | None) -> bool:
        done = {s.name for s in scores if s.repeats_done}
        return default is not None and (not pool(scores) or default not in done)

    def shipped(scores: list[Any], default: str | None) -> str:
        return auto._name(auto._choose(scores, "ensembles", fallback=default)[0])

    def best(scores: list[Any], default: str | None) -> str:
        if not_run(scores, default):
            return str(default)
        return max(pool(scores), key=lambda s: s.accuracy()).name

    def family(scores: list[Any], default: str | None) -> str:
        if not_run(scores, default):
            return str(default)
        top = max(pool(scores), key=lambda s: s.accuracy())
        ties = [top, *(s for s in pool(scores) if s is not top and auto._paired(s, top) >= 0)]
        kin = [s for s in ties if s.name == default or default in s.members]
        if kin:
            return max(kin, key=lambda s: s.accuracy()).name
        return min(ties, key=lambda s: (s.cost, -s.accuracy())).name

    def half_se(scores: list[Any], default: str | None) -> str:
        if not_run(scores, default):
            return str(default)
        top = max(pool(scores), key=lambda s: s.accuracy())
        ties = [top, *(s for s in pool(scores) if s is not top and auto._paired(s, top, z=0.5) >= 0)]
        kept = next((s for s in ties if s.name == default), None)
        return (kept or min(ties, key=lambda s: (s.cost, -s.accuracy()))).name

    return {"shipped": shipped, "max": best, "default-family": family, "ties-half-se": half_se,
            "default": lambda scores, default: str(default)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", type=Path, help="a Chinese dataset folder (default: the demo's reviews)")
    ap.add_argument("--shots", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--pool", type=int, default=8000, help="unlabeled texts per cell with --data")
    ap.add_argument("--encoder", help="an encoder folder passed to auto beside the vectors "
                                      "(the demo passes its tiny MLM)")
    ap.add_argument("--budget", type=float, default=300.0, help="auto's seconds (the demo's: 300)")
    ap.add_argument("--out", default="runs/choice-dev")
    args = ap.parse_args()

    from warmstart.demo import _tfidf_baseline
    from warmstart.transfer.auto import fit_auto
    from warmstart.transfer.candidates import Init, candidates, encoders_in
    from warmstart.transfer.recipes import Workspace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells: dict[str, Any] = {}
    # the code as the run starts (a cell takes minutes; the tree may move meanwhile)
    provenance = stamp(vars(args) | {"data": str(args.data or "demo")})
    with tempfile.TemporaryDirectory() as tmp:
        cases = (folder_cases(args.data, args.shots, args.seeds, args.pool, Path(tmp)) if args.data
                 else demo_cases(args.seeds, Path(tmp), {}))
        for cell, labeled, unlabeled, dev, folders in cases:
            vec = folders[""]  # the demo's own vectors (or the set's)
            seed = int(cell.rsplit("/", 1)[1])
            inits = [vec, *([args.encoder] if args.encoder else [])]
            ws = Workspace()
            t = time.perf_counter()
            res = fit_auto(labeled, unlabeled, inits, time_budget=args.budget, seed=seed,
                           workspace=ws)
            auto_seconds = time.perf_counter() - t
            ws.deadline = None
            picks = {name: rule(res.scores, res.default) for name, rule in rules().items()}
            assert picks["shipped"] == res.chosen, (picks["shipped"], res.chosen)
            by_name = {r.name: r for r in candidates([Init.read(p) for p in inits], unlabeled=True,
                                                     per_class=int(np.bincount(labeled.y).min()))}
            members = {n: (n[5:-1].split("+") if n.startswith("mean[") else [n])
                       for n in picks.values()}
            probs: dict[str, np.ndarray] = {}
            for name in dict.fromkeys(m for ms in members.values() for m in ms):
                recipe = by_name[name]
                texts = unlabeled[:4000] if encoders_in(recipe) else unlabeled
                probs[name] = recipe.fit(labeled, texts, ws, seed=seed).predict_proba(dev.texts)
            dev_acc = {pick: 100 * float(np.mean(np.mean([probs[m] for m in ms], 0).argmax(1) == dev.y))
                       for pick, ms in members.items()}
            base = 100 * float(np.mean(_tfidf_baseline(labeled, dev) == dev.y))
            cells[cell] = {"tfidf_lr": base, "default": res.default, "auto_seconds": auto_seconds,
                           "picks": {rule: {"candidate": p, "dev": dev_acc[p]} for rule, p in picks.items()},
                           "cv": [{"candidate": s.name, "accuracy": round(100 * s.accuracy(), 2),
                                   "folds": s.folds} for s in res.scores if s.repeats_done]}
            print(f"{cell}: TF-IDF {base:.2f}; " + "; ".join(
                f"{rule} {p} {dev_acc[p]:.2f}" for rule, p in picks.items()), flush=True)
            (out / "results.json").write_text(json.dumps(
                {"provenance": provenance,
                 "cells": cells}, indent=1, default=str))
    for group in sorted({c.rsplit("/", 1)[0] for c in cells}):
        mine = [c for c in cells if c.rsplit("/", 1)[0] == group]
        print(f"\n{group}: dev accuracy of each rule's pick, seeds "
              f"{' '.join(c.rsplit('/', 1)[1] for c in mine)}")
        for rule in rules():
            vals = [cells[c]["picks"][rule]["dev"] for c in mine]
            d, lo, hi = paired_ci([v - cells[c]["picks"]["shipped"]["dev"] for v, c in zip(vals, mine, strict=True)])
            print(f"  {rule:<16} {' '.join(f'{v:.2f}' for v in vals):<40} mean "
                  f"{statistics.mean(vals):.2f}  - shipped {d:+.2f} [{lo:+.2f}, {hi:+.2f}]")


if __name__ == "__main__":
    main()
