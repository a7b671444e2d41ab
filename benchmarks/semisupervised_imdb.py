"""IMDB with 20 labels per class plus the 50,000 unlabeled reviews: does unlabeled text pay?

    python benchmarks/semisupervised_imdb.py --vectors runs/bench-pays/vectors --out runs/bench-semi

The same model three ways, each on the same 40 labels (20 per class, drawn with seeds
``--seeds``; all 40 train, ``dev_fraction=0``):

* ``labels``: the word-vector classifier (fastText-style trained word and bigram embeddings
  beside a frozen, standardised channel of warmstart's IMDB vectors) on the 40 labels alone;
* ``self_train``: the same, then ``--rounds`` rounds of self-training on all 50,000 unlabeled
  reviews (``en/imdb/unsup.txt.gz``): each round pseudo-labels them all and keeps the
  ``--per-class`` most confident of each class (above ``--threshold``);
* ``uda``: the same model trained with UDA's consistency loss on the unlabeled reviews and
  their EDA augmentations (synonyms from the same vectors), 3 unlabeled per labeled text,
  400 steps of 16 labeled and 48 unlabeled texts.

And a teacher and a student of different kinds:

* ``probe``: logistic regression on the standardised averages of the same vectors
  (``--method probe``), on the 40 labels: the teacher;
* ``tfidf``: TF-IDF of words and bigrams + logistic regression (``--body tfidf --method
  probe``) on the 40 labels alone: the student without the unlabeled reviews;
* ``teacher``: the same TF-IDF model trained on the 40 labels and the ``--teacher-per-class``
  reviews of each class the teacher is most sure of (``--teacher``, ``--self-train 1``),
  its TF-IDF weights fitted on all 50,000 unlabeled reviews.

``probe_c1`` and ``teacher_c1`` are the same with the teacher's C fixed at 1 instead of chosen
by 5-fold cross-validation on the 40 labels; ``teacher_c1_r2`` adds a second round in which
the student pseudo-labels the reviews itself (``--self-train 2``).

The vectors (``--vectors``) are skip-gram vectors warmstart trained on the same unlabeled
reviews (``benchmarks/pretraining_pays.py --only vectors`` makes them). Test: the fixed
5,000-review subsample of the IMDB test set (stratified, seed 0) of the other benchmarks.
Results go to ``--out/results.json``, one entry per (seed, method), each with its provenance
(commit, settings, CPU, versions, date, and the stamp of the vectors used); re-running skips
the entries already there that were made on the same commit, CPU and settings, and runs the
others again (``--reuse-any`` keeps them and says which).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from provenance import describe, folder_stamp, same_run, stamp, where, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from warmstart.labeled import LabeledDataset
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vectors", default="runs/bench-pays/vectors")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--per-class", type=int, default=5000)
    ap.add_argument("--teacher-per-class", type=int, default=2500)
    ap.add_argument("--methods", nargs="+",
                    default=["labels", "self_train", "uda", "probe", "tfidf", "teacher",
                             "probe_c1", "teacher_c1", "teacher_c1_r2"])
    ap.add_argument("--data", default=os.environ.get("WARMSTART_SHARED_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default="runs/bench-semi")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep entries made on other commits, CPUs or settings (says which)")
    args = ap.parse_args()
    # What can change an entry besides its key (seed/method) and the code; the vectors' own
    # stamp (pretraining_pays.py writes it), so that vectors made again make the entries again.
    made = folder_stamp(Path(args.vectors))
    settings = {k: v for k, v in vars(args).items() if k not in ("seeds", "methods", "out",
                                                                 "reuse_any")}
    settings["vectors_made"] = {k: made.get(k) for k in ("commit", "date")}
    print(describe(stamp(settings)), flush=True)
    d = Path(args.data) / "en" / "imdb"

    def clean(ds: Any) -> Any:
        return dataclasses.replace(ds, texts=[t.replace("<br />", " ") for t in ds.texts])

    train = clean(LabeledDataset.read(d / "train.tsv.gz"))
    test = clean(LabeledDataset.read(d / "test.tsv.gz", labels=train.labels)).sample_per_class(2500, seed=0)
    unsup = str(d / "unsup.txt.gz")
    out = Path(args.out)
    vectors = {"init": args.vectors}
    options: dict[str, dict[str, Any]] = {
        "labels": vectors,
        "self_train": dict(**vectors, unlabeled=unsup, self_train=args.rounds,
                           pseudo_threshold=args.threshold, pseudo_per_class=args.per_class),
        "uda": dict(unlabeled=unsup, consistency=1.0, consistency_ratio=3,
                    consistency_confidence=0.6, sharpen=0.4, augment_vectors=args.vectors,
                    max_steps=400, batch_size=16, **vectors),
        "probe": dict(**vectors, method="probe"),
        "probe_c1": dict(**vectors, method="probe", C=1.0),
        "tfidf": dict(body="tfidf", method="probe"),
        "teacher": dict(body="tfidf", method="probe", unlabeled=unsup, self_train=1,
                        pseudo_threshold=0.5, pseudo_per_class=args.teacher_per_class),
    }
    options["teacher_c1"] = options["teacher"]
    options["teacher_c1_r2"] = {**options["teacher"], "self_train": 2}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:
        few = train.sample_per_class(20, seed=seed)
        for method in args.methods:
            key = f"{seed}/{method}"
            if key in results and same_run(results[key], settings):
                continue
            if key in results and args.reuse_any:
                print(f"seed {seed} {method}: REUSED, made on {where(results[key])}, not on this "
                      "commit, CPU and settings", flush=True)
                continue
            if key in results:
                print(f"seed {seed} {method}: made on {where(results[key])}, with other code, CPU "
                      "or settings: running it again", flush=True)
            start = time.perf_counter()
            # The probes are kept: the teachers of "teacher" and "teacher_c1".
            teacher = out / f"probe{'_c1' if '_c1' in method else ''}-{seed}"
            is_teacher = method.startswith("teacher")
            if is_teacher and not teacher.exists():
                raise SystemExit(f"run the probe first (for {teacher})")
            probe_key = f"{seed}/{teacher.name.rsplit('-', 1)[0]}"
            if is_teacher and not same_run(results.get(probe_key, {}), settings):
                told = (f"{teacher}: the teacher was made on {where(results.get(probe_key, {}))}"
                        ", not on this commit, CPU and settings")
                if not args.reuse_any:
                    raise SystemExit(f"{told}; run {probe_key.split('/')[1]} first")
                print(f"seed {seed} {method}: REUSED teacher {told}", flush=True)
            clf = finetune(few, dev_fraction=0, seed=seed, progress=False,
                           out=teacher if method.startswith("probe") else None,
                           **(dict(teacher=str(teacher)) if is_teacher else {}),
                           **options[method]).classifier
            acc = 100 * evaluate(clf, test)["accuracy"]
            results[key] = {"accuracy": acc, "seconds": round(time.perf_counter() - start, 1),
                            **stamp(settings), "vectors_made": made}
            write_json(path, results)
            print(f"seed {seed} {method}: {acc:.1f} ({results[key]['seconds']:.0f} s)", flush=True)
    for method in args.methods:
        accs = [v["accuracy"] for k, v in results.items() if k.endswith(f"/{method}")]
        if accs:
            print(f"{method}: mean {statistics.mean(accs):.1f} over {len(accs)} seeds "
                  f"({' '.join(f'{a:.1f}' for a in accs)})")
        for k, v in results.items():
            if k.endswith(f"/{method}") and not same_run(v, settings):
                print(f"   {k}: made by an earlier run, on {where(v)}", flush=True)


if __name__ == "__main__":
    main()
