"""IMDB with 20 labels per class plus the 50,000 unlabeled reviews: does unlabeled text pay?

    python benchmarks/semisupervised_imdb.py --vectors runs/bench-pays/vectors --out runs/bench-semi

The recipe is a teacher and a student of different kinds, on the same 40 labels (20 per
class, drawn with each of ``--seeds``; all 40 train, ``dev_fraction=0``):

* the teacher: logistic regression on the standardised averages of warmstart's skip-gram
  vectors of the unlabeled reviews (``--init VECTORS --method probe``), on the 40 labels;
* the student: TF-IDF of words and bigrams + logistic regression (``--body tfidf --method
  probe``), its TF-IDF weights fitted on all 50,000 unlabeled reviews
  (``en/imdb/unsup.txt.gz``), trained on the 40 labels plus the reviews of each class the
  teacher is most sure of (``--teacher``, ``--self-train ROUNDS``).

Three settings of the recipe are chosen, never on test: the teacher's C (``--teacher-c``:
``cv``, 5-fold cross-validation on the 40 labels, or a fixed value), the pseudo-labels per
class (``--per-class``) and the rounds (``--rounds``; in round 2 and later the student labels
the reviews itself). They are chosen on a **development set drawn from the IMDB training
reviews**: for each seed, ``--dev-per-class`` labeled reviews of each class not among its 40
labels (no review with the same text). The dev set is used only to choose, never to train;
note that a user with 40 labels has no 1,000 labeled reviews to choose with, so this measures
the recipe at a well-chosen setting, not what such a user would get by default. The search
runs on ``--search-seeds`` (default 0 and 1: a fit takes one to two minutes on 2 shared
cores, a second round several times that) and picks the variant of best mean dev accuracy,
in two stages: every C with every number of pseudo-labels at the first ``--rounds`` value,
then the best of those with each further ``--rounds`` value; ties go to the first tried.

Only then is the test set read, once per seed of ``--seeds`` (default 0-4), for three models:
the student with the chosen variant, the TF-IDF + LR student on the 40 labels alone (no
unlabeled text: the baseline), and the chosen teacher. Test: the fixed 5,000-review subsample
of the IMDB test set (stratified, seed 0) of the other benchmarks. The claim is the paired
difference chosen student - baseline (and - teacher) over the seeds: mean and a 95%
t-interval over seeds (``scipy.stats.t``, n - 1 degrees of freedom); a win only when the
interval excludes 0.

The vectors (``--vectors``) are skip-gram vectors warmstart trained on the same unlabeled
reviews (``benchmarks/pretraining_pays.py --only vectors`` makes them). Results go to
``--out/results.json``: ``SEED/dev/VARIANT`` (dev accuracy of each variant tried) and
``SEED/test/MODEL`` (test accuracy, with the variant chosen), each with its provenance
(commit, settings, CPU, versions, date, and the stamp of the vectors used); re-running skips
the entries made on the same commit, CPU and settings, and runs the others again
(``--reuse-any`` keeps them and says which).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from imdb import held_out, read_imdb
from paired import paired_ci
from provenance import describe, folder_stamp, reusable, stamp, write_json

ROOT = Path(__file__).resolve().parents[1]


Variant = tuple[str, int, int]  # the teacher's C, pseudo-labels per class, rounds


def variant_name(c: str, per_class: int, rounds: int) -> str:
    return f"C={c},per_class={per_class},rounds={rounds}"


def main() -> None:
    from warmstart.transfer.classifier import Classifier, evaluate
    from warmstart.transfer.finetune import finetune

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vectors", default="runs/bench-pays/vectors")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                    help="the seeds scored on test, with the chosen variant")
    ap.add_argument("--search-seeds", nargs="+", type=int, default=[0, 1],
                    help="the seeds whose mean dev accuracy chooses the variant")
    ap.add_argument("--teacher-c", nargs="+", default=["cv", "1"],
                    help="the teacher's C values to try on dev ('cv': 5-fold CV on the 40 labels)")
    ap.add_argument("--per-class", nargs="+", type=int, default=[1000, 2500, 5000],
                    help="pseudo-labels per class to try on dev")
    ap.add_argument("--rounds", nargs="+", type=int, default=[1, 2],
                    help="self-training rounds to try on dev (1: the teacher's pseudo-labels only)")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--dev-per-class", type=int, default=500,
                    help="labeled train reviews per class held out to choose with (never trained on)")
    ap.add_argument("--data", default=os.environ.get("WARMSTART_SHARED_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default="runs/bench-semi")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep entries made on other commits, CPUs or settings (says which)")
    args = ap.parse_args()
    # What can change an entry besides its key and the code; the vectors' own stamp
    # (pretraining_pays.py writes it), so that vectors made again make the entries again.
    made = folder_stamp(Path(args.vectors))
    settings = {k: v for k, v in vars(args).items()
                if k not in ("seeds", "search_seeds", "out", "reuse_any")}
    settings["vectors_made"] = {k: made.get(k) for k in ("commit", "date")}
    print(describe(stamp(settings)), flush=True)
    d = Path(args.data) / "en" / "imdb"
    train, test = read_imdb(Path(args.data))
    test = test.sample_per_class(2500, seed=0)
    unsup = str(d / "unsup.txt.gz")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def have(key: str) -> bool:
        return reusable(results, key, settings, reuse_any=args.reuse_any)

    def record(key: str, entry: dict[str, Any]) -> None:
        results[key] = {**entry, **stamp(settings), "vectors_made": made}
        write_json(path, results)

    def draw(seed: int) -> tuple[Any, Any]:
        """The seed's 40 labels, and its dev set: labeled train reviews not among them."""
        few = train.sample_per_class(20, seed=seed)
        return few, held_out(train, few, args.dev_per_class, seed=1000 + seed)

    def teacher(few: Any, seed: int, c: str) -> Path:
        folder = out / f"probe-C{c}-{seed}"
        if not (folder / "warmstart.json").exists() or not have(f"{seed}/probe/C={c}"):
            shutil.rmtree(folder, ignore_errors=True)  # made by an earlier run of this script
            start = time.perf_counter()
            c_option: dict[str, Any] = {} if c == "cv" else {"C": float(c)}
            finetune(few, dev_fraction=0, seed=seed, progress=False, out=folder,
                     init=args.vectors, method="probe", **c_option)
            record(f"{seed}/probe/C={c}", {"seconds": round(time.perf_counter() - start, 1)})
        return folder

    def student(few: Any, seed: int, v: Variant) -> Any:
        c, n, r = v
        return finetune(few, dev_fraction=0, seed=seed, progress=False, body="tfidf",
                        method="probe", unlabeled=unsup, teacher=str(teacher(few, seed, c)),
                        self_train=r, pseudo_threshold=args.threshold,
                        pseudo_per_class=n).classifier

    tried: list[Variant] = []

    def try_on_dev(v: Variant) -> None:
        tried.append(v)
        for seed in args.search_seeds:
            key = f"{seed}/dev/{variant_name(*v)}"
            if have(key):
                continue
            few, dev = draw(seed)
            start = time.perf_counter()
            acc = 100 * evaluate(student(few, seed, v), dev)["accuracy"]
            record(key, {"dev_accuracy": acc, "seconds": round(time.perf_counter() - start, 1)})
            print(f"seed {seed} dev {variant_name(*v)}: {acc:.1f} "
                  f"({results[key]['seconds']:.0f} s)", flush=True)

    def best() -> Variant:
        """The variant with the best mean dev accuracy over the search seeds; of equal ones,
        the first tried."""
        means = [statistics.mean(results[f"{s}/dev/{variant_name(*v)}"]["dev_accuracy"]
                                 for s in args.search_seeds) for v in tried]
        return tried[means.index(max(means))]

    # Stage 1: C x pseudo-labels per class, at the first number of rounds; stage 2: the best
    # of stage 1 with each further number of rounds (a second round costs several first fits).
    for c, n in itertools.product(args.teacher_c, args.per_class):
        try_on_dev((c, n, args.rounds[0]))
    c, n, _ = best()
    for r in args.rounds[1:]:
        try_on_dev((c, n, r))
    chosen_v = best()
    chosen = variant_name(*chosen_v)
    print(f"chosen on dev: {chosen}", flush=True)

    # The test set, read only now: once per seed for each of the three models.
    for seed in args.seeds:
        few, _ = draw(seed)
        for model in ("student", "tfidf", "teacher"):
            key = f"{seed}/test/{model}"
            if have(key) and results[key].get("variant") in (chosen, None):
                continue
            start = time.perf_counter()
            if model == "student":
                clf = student(few, seed, chosen_v)
            elif model == "tfidf":  # the 40 labels alone, no unlabeled text
                clf = finetune(few, dev_fraction=0, seed=seed, progress=False, body="tfidf",
                               method="probe").classifier
            else:  # the very probe that taught the chosen student
                clf = Classifier.load(teacher(few, seed, chosen_v[0]))
            acc = 100 * evaluate(clf, test)["accuracy"]
            record(key, {"accuracy": acc, "variant": chosen if model != "tfidf" else None,
                         "seconds": round(time.perf_counter() - start, 1)})
            print(f"seed {seed} test {model}: {acc:.1f} ({results[key]['seconds']:.0f} s)",
                  flush=True)

    report(results, args.search_seeds, args.seeds, tried)


def report(results: dict[str, Any], search_seeds: list[int], seeds: list[int],
           tried: list[Variant]) -> None:
    print("\n== the search on dev (accuracy on the held-out train reviews), seeds "
          + " ".join(map(str, search_seeds)))
    for v in tried:
        accs = [results[f"{s}/dev/{variant_name(*v)}"]["dev_accuracy"] for s in search_seeds]
        print(f"{variant_name(*v):32s} " + " ".join(f"{a:5.1f}" for a in accs)
              + f"   mean {statistics.mean(accs):.2f}")
    print("\n== test, once per seed, the chosen variant")
    acc = {m: [results[f"{s}/test/{m}"]["accuracy"] for s in seeds]
           for m in ("tfidf", "teacher", "student")}
    for s in seeds:
        print(f"seed {s}: chosen {results[f'{s}/test/student']['variant']}: "
              + ", ".join(f"{m} {acc[m][seeds.index(s)]:.1f}" for m in acc))
    for m in acc:
        print(f"{m}: mean {statistics.mean(acc[m]):.1f} ({' '.join(f'{a:.1f}' for a in acc[m])})")
    for base in ("tfidf", "teacher"):
        diffs = [a - b for a, b in zip(acc["student"], acc[base], strict=True)]
        mean, lo, hi = paired_ci(diffs)
        verdict = "win" if lo > 0 else "loss" if hi < 0 else "no difference measured"
        print(f"student - {base}: {mean:+.1f}, 95% CI [{lo:+.1f}, {hi:+.1f}] over {len(diffs)} "
              f"seeds ({' '.join(f'{x:+.1f}' for x in diffs)}): {verdict}")


if __name__ == "__main__":
    main()
