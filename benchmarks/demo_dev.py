"""The demo's settings, chosen on a dev split of its training reviews (never its test set).

    python benchmarks/demo_dev.py --seeds 0 1 2 --out runs/demo-dev
    python benchmarks/demo_dev.py --data runs/fewshot-data/online_shopping --shots 8 64 \\
        --out runs/demo-dev-shopping        # the same recipes on another Chinese set's dev split

The demo's 2,000 test reviews are dropped untouched; a dev split of 2,000 reviews is drawn from
the rest (seed 1); from the remainder each seed draws 200 labeled reviews per class, and the
other reviews are the unlabeled text (labels discarded), from which review vectors are trained
as the demo trains them (skip-gram, jieba words, 40 epochs). Each recipe below is fitted on the
labels and the unlabeled reviews and scored on the dev split; so is the demo's TF-IDF + LR.
With ``--vectors NAME=JSON`` (repeatable) the review vectors are also trained with other
settings (JSON: ``train_vectors`` options over the demo's ``REVIEW_VECTORS``, e.g.
``dim300='{"dim": 300}'``), and each recipe runs on each, named ``recipe @NAME``, in the same run
on the same labels as the demo's own vectors.
With ``--data DIR`` (a folder as ``auto_vs_setfit.py`` reads it, Chinese) the same recipes
are compared on another set: a stratified dev split of 2,000 drawn from its training set (as
``auto_vs_setfit.py --dev`` draws it), ``--shots`` labels per class per seed from the rest,
``--pool`` of the others as unlabeled text, and the vectors of ``auto_vs_setfit.py`` (People's
Daily + the training texts, no labels). Prints a table of dev accuracy per recipe and seed
(mean, and the paired difference to TF-IDF with a 95% interval), and writes
``OUT/results.json`` with commit, CPU and date.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ci  # noqa: E402
from provenance import describe, stamp  # noqa: E402


def recipes(vec: str) -> dict[str, Any]:
    """The recipes compared: auto's static candidates and variants of self-training."""
    from warmstart.transfer.recipes import (
        Mean,
        MeanFit,
        Probe,
        Recipe,
        SelfTrain,
        VectorsChannel,
    )

    class Seeds(Recipe):
        """``recipe`` fitted with ``n`` seeds, probabilities averaged (bagging by seed)."""

        def __init__(self, recipe: Recipe, n: int) -> None:
            self.recipe, self.n, self.name, self.cost = recipe, n, f"{recipe.name} x{n}", recipe.cost * n

        def fit(self, labeled: Any, unlabeled: Any, ws: Any, *, seed: int, pseudo: Any = None) -> Any:
            return MeanFit({f"{i}": self.recipe.fit(labeled, unlabeled, ws, seed=1000 * seed + i,
                                                    pseudo=pseudo) for i in range(self.n)})

    def tfidf() -> Probe:
        return Probe("tfidf", C=10.0)

    def vprobe() -> Probe:
        return Probe("vectors", vec)

    def channel() -> VectorsChannel:
        return VectorsChannel(vec)

    def views() -> Mean:
        return Mean([tfidf(), vprobe()], name="mean-of-views")

    out: dict[str, Any] = {
        "tfidf": tfidf(),
        "vectors-channel": channel(),
        "mean[tfidf+vectors-channel]": Mean([tfidf(), channel()]),
        "self-train-views": SelfTrain(views(), [tfidf(), vprobe()]),
        "self-train-static": SelfTrain(views(), [tfidf(), vprobe(), channel()]),
        "self-train-static/teacher+channel": SelfTrain(
            Mean([tfidf(), vprobe(), channel()]), [tfidf(), vprobe(), channel()]
        ),
        "self-train-static/teacher+channel/0.5": SelfTrain(
            Mean([tfidf(), vprobe(), channel()]), [tfidf(), vprobe(), channel()], share=0.5
        ),
        "self-train[tfidf+channel]/0.5": SelfTrain(
            Mean([tfidf(), channel()]), [tfidf(), channel()], share=0.5
        ),
        "self-train[tfidf+channel]/0.3": SelfTrain(
            Mean([tfidf(), channel()]), [tfidf(), channel()], share=0.3
        ),
        "self-train[tfidf+channel]/0.7": SelfTrain(
            Mean([tfidf(), channel()]), [tfidf(), channel()], share=0.7
        ),
        "vectors-channel x3": Seeds(channel(), 3),
        "mean[tfidf+vectors-channel x3]": Mean([tfidf(), Seeds(channel(), 3)]),
        "self-train-static/channel x3": SelfTrain(views(), [tfidf(), vprobe(), Seeds(channel(), 3)]),
        # the labels half the students' weight (the default: at least a fifth)
        "self-train-static labels-half": SelfTrain(
            views(), [tfidf(), vprobe(), channel()], label_share=0.5),
        "self-train-views labels-half": SelfTrain(views(), [tfidf(), vprobe()], label_share=0.5),
        "self-train-static/channel x3 labels-half": SelfTrain(
            views(), [tfidf(), vprobe(), Seeds(channel(), 3)], label_share=0.5),
    }
    # The channel's own training settings, alone and as a student of self-training: epochs
    # (default: at least 200 steps, 5 to 20 epochs), a hidden layer, smaller batches.
    out["vectors-channel 10 epochs"] = VectorsChannel(vec, {"epochs": 10})
    for label, options in {"3 epochs": {"epochs": 3}, "10 epochs": {"epochs": 10},
                           "hidden 100": {"hidden": 100}, "batch 16": {"batch_size": 16}}.items():
        out[f"self-train-static labels-half, channel {label}"] = SelfTrain(
            views(), [tfidf(), vprobe(), VectorsChannel(vec, options)], label_share=0.5)
    # The vectors probe's C by 5-fold cross-validation on its training examples (C=0) instead
    # of the fixed C=1: alone, and in self-training's teacher and students.
    out["vectors-probe"] = vprobe()
    out["vectors-probe C=cv"] = Probe("vectors", vec, C=0.0)
    cv_views: list[Recipe] = [tfidf(), Probe("vectors", vec, C=0.0)]
    out["self-train-static labels-half, vectors C=cv"] = SelfTrain(
        Mean(cv_views, name="mean-of-views"), [*cv_views, channel()], label_share=0.5)
    # The TF-IDF view's C by cross-validation too (auto's is C=10): alone, and in the shipped
    # self-train-static (the vectors probe's C by CV already).
    out["tfidf C=cv"] = Probe("tfidf", C=0.0)
    both_cv: list[Recipe] = [Probe("tfidf", C=0.0), Probe("vectors", vec, C=0.0)]
    out["self-train-static labels-half, vectors C=cv, tfidf C=cv"] = SelfTrain(
        Mean(both_cv, name="mean-of-views"), [*both_cv, channel()], label_share=0.5)
    # Other sparse views: character 1-3 grams instead of 1-2, and a second TF-IDF of jieba
    # words beside the characters' (another tokenisation, other errors), in the shipped
    # self-train-static's teacher and students.
    out["tfidf 1-3"] = Probe("tfidf", C=10.0, ngrams=3)
    out["tfidf jieba"] = Probe("tfidf", C=10.0, tokenizer="jieba")
    vcv = Probe("vectors", vec, C=0.0)
    tri: list[Recipe] = [Probe("tfidf", C=10.0, ngrams=3), vcv]
    out["self-train-static labels-half, vectors C=cv, tfidf 1-3"] = SelfTrain(
        Mean(tri, name="mean-of-views"), [*tri, channel()], label_share=0.5)
    words: list[Recipe] = [tfidf(), Probe("tfidf", C=10.0, tokenizer="jieba"), vcv]
    out["self-train-static labels-half, vectors C=cv, + tfidf jieba"] = SelfTrain(
        Mean(words, name="mean-of-views"), [*words, channel()], label_share=0.5)
    # The vectors probe on the mean and the elementwise max of each text's word vectors
    # (SWEM-concat, Shen et al. 2018) instead of the mean alone: alone, and in the shipped
    # self-train-static's teacher and students.
    out["vectors-probe C=cv, mean+max"] = Probe("vectors", vec, C=0.0, pooling="mean+max")
    pooled: list[Recipe] = [tfidf(), Probe("vectors", vec, C=0.0, pooling="mean+max")]
    out["self-train-static labels-half, vectors C=cv mean+max"] = SelfTrain(
        Mean(pooled, name="mean-of-views"), [*pooled, channel()], label_share=0.5)
    for name, r in out.items():
        r.name = name
    return out


def demo_cases(
    seeds: list[int], work: Path, variants: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, Any, list[str], Any, dict[str, str]]]:
    """(cell, labeled, unlabeled, dev, {variant: vectors}) per seed on the demo's reviews (test
    dropped); the variant "" is the demo's own vectors, the others override its settings."""
    from warmstart.corpus import Corpus
    from warmstart.demo import REVIEW_VECTORS, _rows_of, split_reviews
    from warmstart.vectors.train import train_vectors

    _, rest, _ = split_reviews()  # the demo's test set is dropped, never read
    dev = rest.sample_per_class(1000, seed=1)
    train = rest.subset(np.setdiff1d(np.arange(len(rest)), _rows_of(rest, dev)))
    for seed in seeds:
        labeled = train.sample_per_class(200, seed=seed)
        chosen = set(labeled.texts)
        unlabeled = [t for t in train.texts if t not in chosen]
        corpus = work / "reviews.txt"
        corpus.write_text("".join(t.replace("\n", " ") + "\n" for t in unlabeled), encoding="utf-8")
        folders = {}
        for i, (variant, options) in enumerate({"": {}, **variants}.items()):
            vec = work / f"vectors-{seed}-{i}"
            train_vectors(Corpus(corpus), out=vec, progress=False,
                          **{"epochs": 40, "seed": seed, **REVIEW_VECTORS, **options})
            folders[variant] = str(vec)
        yield f"demo/200/{seed}", labeled, unlabeled, dev, folders


def folder_cases(
    data: Path, shots: list[int], seeds: list[int], pool: int, work: Path
) -> Iterator[tuple[str, Any, list[str], Any, dict[str, str]]]:
    """The same cells on a Chinese set's dev split (``auto_vs_setfit.py --dev``)."""
    from auto_vs_setfit import Dataset, zh_vectors

    ds = Dataset(data, dev=2000)
    dev = ds.test(0)
    vec, _ = zh_vectors(ds, work)
    for n in shots:
        for seed in seeds:
            labeled = ds.train.sample_per_class(n, seed=seed)
            rest = ds.pool(labeled)
            order = np.random.default_rng([seed, 4]).permutation(len(rest))[:pool]
            yield (f"{ds.name}/{n}/{seed}", labeled, [rest[i] for i in order.tolist()], dev,
                   {"": vec})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--data", type=Path, help="a Chinese dataset folder (default: the demo's reviews)"
    )
    ap.add_argument("--shots", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--pool", type=int, default=8000, help="unlabeled texts per cell with --data")
    ap.add_argument("--only", nargs="*", help="recipe names to run (default: all)")
    ap.add_argument("--out", default="runs/demo-dev")
    ap.add_argument("--vectors", nargs="*", default=[], metavar="NAME=JSON",
                    help="review vectors with other settings, each recipe run on each")
    args = ap.parse_args()
    variants = {}
    for item in args.vectors:
        name, _, options = item.partition("=")
        try:
            variants[name] = json.loads(options)
        except json.JSONDecodeError as e:
            ap.error(f"--vectors {item!r}: NAME=JSON expected ({e})")
        if not name or not isinstance(variants[name], dict):
            ap.error(f"--vectors {item!r}: NAME=JSON with a JSON object expected")
    if variants and args.data:
        ap.error("--vectors applies to the demo's reviews, not to --data")

    from warmstart.demo import _tfidf_baseline
    from warmstart.transfer.recipes import Workspace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "seeds": args.seeds,
        "data": str(args.data or "demo"),
        "shots": args.shots,
        "pool": args.pool,
        "vectors": variants,
    }
    provenance = stamp(settings)  # the code as the run starts, not as it ends
    print(describe(provenance), flush=True)
    base_name = "TF-IDF + LR (the demo's)"
    acc: dict[str, dict[str, float]] = {}
    secs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = (
            folder_cases(args.data, args.shots, args.seeds, args.pool, Path(tmp))
            if args.data
            else demo_cases(args.seeds, Path(tmp), variants)
        )
        for cell, labeled, unlabeled, dev, folders in cases:
            base = _tfidf_baseline(labeled, dev)
            acc.setdefault(base_name, {})[cell] = 100 * float(np.mean(base == dev.y))
            seed = int(cell.rsplit("/", 1)[1])
            for variant, vec in folders.items():
                ws = Workspace()
                ws.vectors(vec, [*labeled.texts, *unlabeled])
                for recipe_name, recipe in recipes(vec).items():
                    if args.only and recipe_name not in args.only:
                        continue
                    name = f"{recipe_name} @{variant}" if variant else recipe_name
                    t = time.perf_counter()
                    fitted = recipe.fit(labeled, unlabeled, ws, seed=seed)
                    pred = fitted.predict_proba(dev.texts).argmax(1)
                    acc.setdefault(name, {})[cell] = 100 * float(np.mean(pred == dev.y))
                    secs.setdefault(name, []).append(time.perf_counter() - t)
                    print(f"{cell} {name}: {acc[name][cell]:.2f} ({secs[name][-1]:.0f} s)",
                          flush=True)
    groups = sorted({c.rsplit("/", 1)[0] for c in acc[base_name]})
    for group in groups:
        cells = [c for c in acc[base_name] if c.rsplit("/", 1)[0] == group]
        print(f"\n{group}: dev accuracy, seeds {' '.join(c.rsplit('/', 1)[1] for c in cells)}")
        print(f"{'recipe':<42} {'per seed':<24} mean   - TF-IDF [95% CI]     s")
        for name, by_cell in acc.items():
            vals = [by_cell[c] for c in cells]
            diff = ""
            if name != base_name:
                d, lo, hi = paired_ci([by_cell[c] - acc[base_name][c] for c in cells])
                diff = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            own = ""
            recipe_name = name.split(" @")[0]
            if recipe_name != name and recipe_name in acc:  # against the demo's own vectors
                d, lo, hi = paired_ci([by_cell[c] - acc[recipe_name][c] for c in cells])
                own = f"  - own vectors {d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            t = statistics.median(secs[name]) if name in secs else 0.0
            print(
                f"{name:<42} {' '.join(f'{v:.2f}' for v in vals):<24} "
                f"{statistics.mean(vals):.2f}  {diff:<22} {t:.0f}{own}"
            )
    (out / "results.json").write_text(
        json.dumps({"provenance": provenance, "accuracy": acc, "seconds": secs}, indent=1)
    )


if __name__ == "__main__":
    main()
