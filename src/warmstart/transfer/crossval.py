"""Repeated stratified k-fold cross-validation of recipes on the labeled examples alone, for
``--recipe auto``: each candidate's out-of-fold accuracy (:class:`Score`), with cheap
candidates first, successive halving after each repeat, and a deadline; and ensembles
(means of candidates' probabilities) scored on the same out-of-fold predictions.

A prediction whose top probability is tied counts as wrong
(:func:`~warmstart.evaluation.classification.correct_top1`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from warmstart.errors import WarmstartError
from warmstart.evaluation.classification import correct_top1
from warmstart.labeled import LabeledDataset
from warmstart.transfer.candidates import is_one_of
from warmstart.transfer.recipes import Recipe, Workspace


@dataclass
class Score:
    """One candidate's cross-validation: accuracy over its out-of-fold predictions."""

    name: str
    correct: np.ndarray  # (repeats, n) 1/0 per labeled example, NaN where not evaluated
    seconds: list[float] = field(default_factory=list)  # fit time per fold
    cost: float = 1.0
    members: tuple[str, ...] = ()  # an ensemble's members (scored from their predictions)
    member_folds: int = 0  # an ensemble's folds: those all its members were evaluated on

    @property
    def folds(self) -> int:
        return self.member_folds if self.members else len(self.seconds)

    @property
    def repeats_done(self) -> int:
        return int((~np.isnan(self.correct)).all(1).sum())

    def accuracy(self) -> float:
        c = self.correct
        return float(np.nanmean(c)) if np.isfinite(c).any() else float("nan")

    def per_example(self) -> np.ndarray:
        """(n,) mean correctness of each labeled example over the repeats it was held out in
        (NaN where never)."""
        c = self.correct
        seen = np.isfinite(c).sum(0)
        return np.where(seen > 0, np.nansum(c, 0) / np.maximum(seen, 1), np.nan)

    def ci95(self) -> float:
        """Half-width of a 95% interval: binomial over the labeled examples (not the repeats,
        which reuse them)."""
        n = int(np.isfinite(self.correct).any(0).sum())
        p = self.accuracy()
        return 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def fold_count(labeled: LabeledDataset, folds: int = 0) -> int:
    """Folds: ``folds`` if given, else the largest number up to 5 that splits the smallest
    class evenly (8 labels per class: 4 folds of 2), so that every fold's training part
    keeps the classes' proportions: with a handful of labels, one example more of a class in
    training tilts a probe toward it, against the held-out examples of the others."""
    counts = np.bincount(labeled.y, minlength=len(labeled.labels))
    smallest = int(counts.min())
    if smallest < 2:
        short = [labeled.labels[k] for k, c in enumerate(counts) if c < 2]
        raise WarmstartError(
            f"{labeled.source}: --recipe auto cross-validates on the labels, and the class(es) "
            f"{', '.join(map(repr, short[:5]))} have fewer than 2 examples; label at least 2 "
            "per class, or choose a recipe with --recipe NAME")
    if folds:
        return max(2, min(folds, smallest))
    top = min(5, smallest)
    return next((k for k in range(top, 2, -1) if smallest % k == 0), top)


def _splits(y: np.ndarray, folds: int, repeats: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    from sklearn.model_selection import StratifiedKFold

    out = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed * 1000 + r)
        out.append([(tr, va) for tr, va in skf.split(np.zeros(len(y)), y)])
    return out


@dataclass
class CrossValidation:
    """Each candidate's score and out-of-fold probabilities ((repeats, n, K), NaN where not
    evaluated)."""

    scores: dict[str, Score]
    oof: dict[str, np.ndarray]
    folds: int


def cross_validate(
    recipes: Sequence[Recipe], labeled: LabeledDataset, pool: Sequence[str], ws: Workspace, *,
    folds: int = 0, repeats: int = 3, seed: int = 0, deadline: float | None = None,
    reserve: Callable[[dict[str, Score]], float] | None = None,
    echo: Callable[[str], Any] | None = None,
    guess: Callable[[Recipe, LabeledDataset], float] | None = None,
) -> CrossValidation:
    """Repeated stratified k-fold cross-validation of ``recipes`` on ``labeled``.

    Each candidate is fitted on the other folds with ``pool`` as its unlabeled text (never
    a labeled example) and predicts the held-out fold. Candidates go cheapest first; one
    whose next fold would not end ``reserve(scores)`` seconds (the final fit, which comes
    after) before ``deadline`` stops there (its time as measured on
    its earlier folds; before its first, ``guess(recipe, fold)``, or its cost relative to the
    candidates measured), and after each repeat only those within reach of the best go on
    (:func:`_halve`).
    """
    known = set(labeled.texts)
    pool = [t for t in pool if t not in known]
    k = fold_count(labeled, folds)
    splits = _splits(labeled.y, k, repeats, seed)
    n = len(labeled)
    scores = {r.name: Score(r.name, np.full((repeats, n), np.nan), cost=r.cost) for r in recipes}
    oof = {r.name: np.full((repeats, n, len(labeled.labels)), np.nan) for r in recipes}
    alive = sorted(recipes, key=lambda r: r.cost)
    for rep in range(repeats):
        for f, (tr, va) in enumerate(splits[rep]):
            fold = labeled.subset(tr)
            if not alive:
                break
            for recipe in list(alive):
                sc = scores[recipe.name]
                first = guess(recipe, fold) if guess is not None and not sc.seconds else None
                end = None if deadline is None else deadline - (reserve(scores) if reserve else 0)
                if end is not None and not _fits(recipe, alive, scores, end, first):
                    alive.remove(recipe)  # out of time for this one
                    continue
                runs, t = ws.pair_runs, time.perf_counter()
                fitted = recipe.fit(fold, pool, ws, seed=seed + rep)
                probs = fitted.predict_proba([labeled.texts[i] for i in va])
                seconds = time.perf_counter() - t
                if recipe.uses_tuned and ws.pair_runs == runs:  # its share of the pair phase
                    seconds += ws.pair_seconds
                sc.seconds.append(seconds)
                oof[recipe.name][rep, va] = probs
                sc.correct[rep, va] = _correct(probs, labeled.y[va])
            ws.forget_tuned()  # the next fold tunes on other examples
            if echo is not None:
                echo(f"auto: repeat {rep + 1}, fold {f + 1}/{k}: "
                     + ", ".join(f"{r.name} {100 * scores[r.name].accuracy():.1f}" for r in alive))
        alive = _halve(alive, scores, rep)
        if not alive:
            break
    return CrossValidation(scores=scores, oof=oof, folds=k)


def _correct(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1.0 where the true class has the highest probability alone (a tie counts as wrong)."""
    return correct_top1(probs, y).astype(np.float64)


def _fits(recipe: Recipe, alive: list[Recipe], scores: dict[str, Score], deadline: float,
          first: float | None = None) -> bool:
    """Whether one more fold of ``recipe`` ends before ``deadline``: its time as measured on
    the folds so far, else ``first``, else its cost relative to the candidates measured."""
    measured = {r.name: float(np.median(scores[r.name].seconds)) for r in alive
                if scores[r.name].seconds}
    per_cost = (sum(measured.values()) / max(sum(scores[nm].cost for nm in measured), 1e-9)
                if measured else 0.0)
    fold = measured.get(recipe.name, first if first is not None else recipe.cost * per_cost)
    return time.monotonic() + fold <= deadline


def _halve(alive: list[Recipe], scores: dict[str, Score], rep: int) -> list[Recipe]:
    """After a repeat: keep the candidates within two standard errors of the best."""
    done = [r for r in alive if scores[r.name].repeats_done > rep]
    if len(done) < 2:
        return done
    best = max(scores[r.name].accuracy() for r in done)
    keep = [r for r in done if scores[r.name].accuracy() >= best - 2 * scores[r.name].ci95() / 1.96]
    return keep


def ensembles(singles: list[Score], oof: dict[str, np.ndarray], y: np.ndarray) -> list[Score]:
    """Means of the best candidates' out-of-fold probabilities: every pair of the four best
    (with a whole repeat done), the three best and the four best, and every view's probe
    together. Scored on the examples all members were evaluated on; no fit is repeated."""
    import itertools

    by = {s.name: s for s in singles}
    ranked = sorted((s for s in singles if s.repeats_done), key=lambda s: -s.accuracy())
    top = [s.name for s in ranked[:4]]
    sets: list[tuple[str, ...]] = list(itertools.combinations(top, 2))
    sets += [tuple(top[:3])] if len(top) >= 3 else []
    sets += [tuple(top)] if len(top) == 4 else []
    views = [n for n in by if n == "tfidf" or is_one_of(n, ("vectors-probe", "pairs-probe"))]
    if len(views) > 1 and tuple(views) not in sets:
        sets.append(tuple(views))
    sets = list(dict.fromkeys(tuple(sorted(s, key=list(by).index)) for s in sets))
    out = []
    for members in sets:
        probs = np.mean([oof[m] for m in members], axis=0)
        correct = np.where(np.isnan(probs).any(2), np.nan, 0.0)
        for r in range(probs.shape[0]):
            ok = ~np.isnan(probs[r]).any(1)
            correct[r, ok] = _correct(probs[r, ok], y[ok])
        if np.isnan(correct).all():
            continue
        out.append(Score("mean[" + "+".join(members) + "]", correct,
                         seconds=[sum(np.median(by[m].seconds) for m in members)],
                         cost=sum(by[m].cost for m in members), members=members,
                         member_folds=min(by[m].folds for m in members)))
    return out
