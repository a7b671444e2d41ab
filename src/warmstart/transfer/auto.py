"""``--recipe auto``: the recipe chosen by cross-validation on the labeled examples alone.

    >>> result = fit_auto(labeled, unlabeled, inits=["minilm", "vecs"], time_budget=300)  # doctest: +SKIP
    >>> print(format_table(result.table))                                               # doctest: +SKIP

1. **Candidates** are the recipes that apply to what was given (:func:`candidates`): TF-IDF,
   a probe on each word-vector and encoder ``init``, the encoder after SetFit's pair phase
   (probe and prototype), and with unlabeled text, self-training: a teacher (the pair-tuned
   encoder's probe, or the mean of the views without an encoder) labels the unlabeled texts,
   and students (the encoder fine-tuned end to end, probes of every view, the word-vector
   channel) learn from the labels and the texts it is surest of.
2. **Repeated stratified k-fold cross-validation** on the labeled examples: every candidate is
   fitted on the other folds (the unlabeled texts, never the held-out examples, are its
   unlabeled text) and predicts the held-out fold. Means of candidates' probabilities
   (ensembles) are scored on the same out-of-fold predictions, at no cost. Cheap candidates
   go first; each further repeat goes to the candidates still within reach of the best
   (successive halving), as long as the time budget leaves room for the final fit. Where
   SetFit's pair phase would leave no time for the fallback's final fit (with 64 labels per
   class and SetFit's time as the budget), the pair phase is the in-batch one
   (:func:`~warmstart.transfer.fewshot.in_batch_tune`): SetFit's loss on every two texts of a
   batch, about an eighth of the encoder passes.
3. **The choice** (``select``): ``ensembles`` (the default) takes the best of the ensembles
   and the self-training and pair-phase candidates; ``best`` the best of every candidate.
   The default is the recipe found best on the development sets (``FIXED``; ``fixed`` takes
   it whatever the folds say): the encoder's self-training, or, where the encoder's frozen
   probe cross-validates clearly below the best candidate without an encoder (a weak encoder:
   with 100 labels or more, by two paired standard errors) or its final fit would not fit in
   the time left, self-training of the static views. Where the budget left the default out of
   the cross-validation (with a handful of labels and an encoder, always), it is the choice. A
   candidate within one paired standard error of the best counts as a tie: ties go to the
   default where it is one of them (the folds cannot tell it from the best), else to the
   cheaper candidate.
4. The chosen recipe is fitted on all labels and the unlabeled texts (with an encoder, as many
   as the time left allows, at most ``pool_max``; without, up to ``static_pool_max``) and
   saved as one classifier folder, with the cross-validation table in its ``warmstart.json``.

The accuracy of the chosen candidate in the table is a little optimistic (it is the maximum of
several noisy estimates); the table says how many folds each figure comes from.

The candidates and their time estimates are in :mod:`.candidates`, the cross-validation and
the ensembles' scores in :mod:`.crossval`; this module runs them, chooses, and fits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.tokenize.remembered import remember_tokens
from warmstart.transfer.candidates import (
    Init,
    candidates,
    encoders_in,
    estimate_seconds,
    is_one_of,
    pool_that_fits,
    vector_views,
)
from warmstart.transfer.crossval import Score, cross_validate, ensembles
from warmstart.transfer.recipes import Fitted, Mean, Recipe, Workspace
from warmstart.transfer.settings import SELECTIONS


@dataclass
class AutoResult:
    """What :func:`fit_auto` found: the chosen recipe fitted on all labels, its name and why,
    the cross-validation table, and (with ``study``) every candidate fitted and each rule's
    choice."""

    fitted: Fitted
    chosen: str
    reason: str
    table: list[dict[str, Any]]
    seconds: float
    folds: int
    repeats: int
    study: dict[str, Fitted] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)  # every candidate's and ensemble's CV
    default: str | None = None  # the recipe ties went to (see ``_default``)


# Every fold, view and student reads the same texts: each is split into words once a run.
@remember_tokens()
def fit_auto(
    labeled: LabeledDataset,
    unlabeled: Sequence[str],
    inits: Sequence[str],
    *,
    time_budget: float | None = None,
    seed: int = 0,
    select: str = "ensembles",
    folds: int = 0,
    repeats: int = 3,
    pool_max: int = 4000,
    static_pool_max: int = 20000,
    workspace: Workspace | None = None,
    echo: Callable[[str], Any] | None = None,
    study: bool = False,
) -> AutoResult:
    """Cross-validate the candidate recipes on ``labeled``, choose one, fit it on everything.

    ``unlabeled`` texts are every candidate's unlabeled text (those equal to a labeled text are
    dropped). ``time_budget`` (seconds) bounds the whole run, the final fit included. With
    ``study``, every candidate is also fitted on all labels (``AutoResult.study``) and the
    choice of each ``select`` rule is kept (``AutoResult.choices``): for measuring which rule
    generalises, on data held out from the labels.
    """
    if select not in SELECTIONS:
        raise WarmstartError(f"--auto-select {select}: use one of {', '.join(SELECTIONS)}")
    if labeled.multi_label:
        raise WarmstartError(f"{labeled.source}: multi-label data; --recipe auto needs one label "
                             "per text")
    start = time.monotonic()
    deadline = start + time_budget if time_budget else None
    ws = workspace or Workspace()
    ws.deadline = deadline
    known = set(labeled.texts)
    wide = [t for t in dict.fromkeys(unlabeled) if t not in known]
    # A seeded sample in random order (a file may hold its texts class by class): the recipes
    # that read the unlabeled texts without an encoder (cheap) get up to ``static_pool_max``
    # of them, those that read them with an encoder the first ``pool_max``.
    order = np.random.default_rng([seed, 4]).permutation(len(wide))[:static_pool_max]
    wide = [wide[i] for i in order.tolist()]
    pool = wide[:pool_max]
    init_list = [Init.read(p) for p in inits]
    recipes = candidates(init_list, unlabeled=bool(pool),
                         per_class=int(np.bincount(labeled.y).min()))
    for path, pooling in vector_views(recipes):
        ws.vectors(path, [*labeled.texts, *wide], pooling=pooling)  # one vocabulary for every fold
    say = echo or (lambda _: None)
    say(f"auto: {len(recipes)} candidates, cross-validation on {len(labeled)} labels"
        + (f", {len(wide):,} unlabeled texts" if wide else "")
        + (f", {time_budget:.0f} s budget" if time_budget else ""))
    by_name = {r.name: r for r in recipes}
    # The recipes found best on the development sets, in order: the first is the fallback.
    defaults = [by_name[n] for base in FIXED for n in by_name if is_one_of(n, (base,))]
    fallback = defaults[0]
    # The folds pseudo-label half the pool: each fold tunes its own encoder and reads the
    # pool with it, while the final fit reads it once.
    cv_pool = pool[: max(1, len(pool) // 2)] if pool else []
    scale = max(1.0, len(wide) / max(len(cv_pool), 1))

    def reserve_cheap(scores: dict[str, Score]) -> float:
        """The final fit of a cheap candidate: its folds' time, scaled to all labels and the
        whole pool, for the slowest measured."""
        times = [float(np.median(s.seconds)) for s in scores.values() if s.seconds]
        return 1.5 * scale * max(times, default=0.0)

    def reserve(scores: dict[str, Score]) -> float:
        """The final fit of the fallback, estimated: by its encoder passes, or from its folds
        (scaled to the whole pool) once it has some."""
        est = estimate_seconds(fallback, labeled, len(pool), ws)
        done = scores.get(fallback.name)
        if done is not None and done.seconds:
            est = max(est, 1.5 * scale * float(np.median(done.seconds)))
        return est

    # The cheap candidates go first, in time for the final fit of one of them; what is left
    # goes to those that tune the encoder per fold, in time for the final fit of the fallback.
    cheap = [r for r in recipes if not r.uses_tuned]
    cv = cross_validate(cheap, labeled, cv_pool, ws, folds=folds, repeats=repeats, seed=seed,
                        deadline=deadline, reserve=reserve_cheap, echo=say)
    costly = [r for r in recipes if r.uses_tuned]
    if (costly and deadline is not None and not ws.in_batch
            and estimate_seconds(fallback, labeled, 0, ws) > deadline - time.monotonic()):
        # SetFit's pairs would leave the fallback's final fit unfinished (with 64 labels per
        # class, SetFit's time): the pair phase on every two texts of a batch instead.
        ws.in_batch = IN_BATCH
        say(f"auto: SetFit's pair phase does not fit the time left; pairs within batches of "
            f"{IN_BATCH} texts instead")
    if costly:
        more = cross_validate(costly, labeled, cv_pool, ws, folds=folds, repeats=repeats,
                              seed=seed, deadline=deadline, reserve=reserve, echo=say,
                              guess=lambda r, fold: estimate_seconds(
                                  r, fold, len(cv_pool), ws, pairs_done=ws.has_tuned))
        cv.scores.update(more.scores)
        cv.oof.update(more.oof)
    singles = [s for s in cv.scores.values() if s.folds]
    everything = singles + ensembles(singles, cv.oof, labeled.y)
    default = _default(defaults, cv.scores, labeled, ws, deadline)
    chosen, reason = _choose(everything, select, fallback=default)
    name = _name(chosen)
    recipe = _recipe_of(chosen, by_name)
    if not encoders_in(recipe):
        pool = wide  # no encoder reads it: every text sampled
    elif deadline is not None:  # as much of the pool as the time left allows
        pool = pool_that_fits(recipe, labeled, pool, ws, deadline - time.monotonic())
    say(f"auto: chose {name} ({reason}); fitting it on all {len(labeled)} labels"
        + (f" and {len(pool):,} unlabeled texts" if pool else ""))
    fitted = recipe.fit(labeled, pool, ws, seed=seed)
    result = AutoResult(fitted=fitted, chosen=name, reason=reason,
                        table=_table(everything, name), seconds=time.monotonic() - start,
                        folds=cv.folds, repeats=max([s.repeats_done for s in singles] or [0]),
                        scores=everything, default=default)
    if study:  # every candidate fitted, and what each way of choosing would have chosen
        ws.deadline = None
        result.study = {r.name: (fitted if r.name == name else
                                 r.fit(labeled, pool, ws, seed=seed)) for r in recipes}
        result.choices = {s: _name(_choose(everything, s, fallback=default)[0])
                          for s in SELECTIONS}
    return result


# -- the choice --------------------------------------------------------------------------------


def _default(defaults: Sequence[Recipe], scores: dict[str, Score], labeled: LabeledDataset,
             ws: Workspace, deadline: float | None) -> str | None:
    """The name of the recipe to take where cross-validation cannot decide: the first of
    ``defaults`` (the recipes found best on the development sets, in order), or, where that
    one does not apply here, the first that reads no encoder and learns from the unlabeled
    texts (self-training of the static views), else None.

    The first does not apply where it reads the texts through an encoder whose frozen probe
    cross-validates clearly below the best candidate without one (a weak encoder: self-training
    it spreads its errors; judged with 100 labels or more, where the folds can tell), or where
    its final fit would not end before ``deadline``.
    """
    if not defaults:
        return None
    first = defaults[0]
    weak = False
    if encoders_in(first):
        frozen = [s for s in scores.values()
                  if s.repeats_done and is_one_of(s.name, ("frozen-probe",))]
        static = [s for s in scores.values() if s.repeats_done and not s.name.startswith("frozen")]
        # Only where the folds can tell: at least 100 labels, and two paired standard errors
        # (with a handful of labels the folds are too noisy, and pessimistic for the encoder).
        if frozen and static and len(labeled) >= 100:
            best = max(static, key=lambda s: s.accuracy())
            weak = _paired(max(frozen, key=lambda s: s.accuracy()), best, z=2.0) < 0
    late = (deadline is not None
            and estimate_seconds(first, labeled, 0, ws) > deadline - time.monotonic())
    if not weak and not late:
        return first.name
    static_ones = [r for r in defaults if not encoders_in(r) and is_one_of(r.name, _FEW)]
    return static_ones[0].name if static_ones else None


def _paired(a: Score, b: Score, *, z: float = 1.0) -> float:
    """Whether ``a`` is above ``b`` (1), below (-1), or within ``z`` paired standard errors
    (0), on the examples both were evaluated on."""
    both = np.isfinite(a.per_example()) & np.isfinite(b.per_example())
    d = a.per_example()[both] - b.per_example()[both]
    if len(d) < 2:
        return 0.0
    se = float(np.std(d) / math.sqrt(len(d)))
    return 1.0 if d.mean() > z * se else -1.0 if d.mean() < -z * se else 0.0


def _choose(scores: list[Score], select: str, *,
            fallback: str | None) -> tuple[Score | str, str]:
    """The candidate to fit (its score, or the name of one not cross-validated), and why.

    ``fixed`` takes ``fallback``; ``ensembles`` the best of the ensembles and self-training
    recipes (of all, where each of those is two paired standard errors below another),
    ``best`` the best of all, among those cross-validated on at least one whole repeat. When
    that excludes a serious candidate (the budget did not reach it), the choice is
    ``fallback``, the recipe found best on the development sets (see :func:`_default`).
    Otherwise it is the best cross-validated candidate (TF-IDF when none was), or among those
    within a paired standard error of it, ``fallback`` if it is one, else the cheapest.
    """
    done = {s.name for s in scores if s.repeats_done}
    if select == "fixed" and fallback is not None:
        return _score_or_name(scores, fallback), "the fixed choice"
    pool = (scores if select == "best"
            else [s for s in scores if s.members or is_one_of(s.name, _FEW)])
    evaluated = [s for s in pool if s.repeats_done]
    if fallback is not None and (not evaluated
                                 or (is_one_of(fallback, _FEW) and fallback not in done)):
        return _score_or_name(scores, fallback), (
            "the default; the time budget did not cross-validate it" if fallback not in done
            else "the default")
    everyone = [s for s in scores if s.repeats_done]  # ``evaluated`` is a part of it
    if evaluated:  # each of them two paired standard errors below another: all of them count
        top = max(everyone, key=lambda s: s.accuracy())
        if _paired(max(evaluated, key=lambda s: s.accuracy()), top, z=2.0) < 0:
            evaluated = everyone
    evaluated = evaluated or everyone
    if not evaluated:
        return _score_or_name(scores, "tfidf"), "the time budget cross-validated no candidate"
    # Ties (within a paired standard error of the best) go to the default, the recipe found
    # best on the development sets, where it is one of them; else to the cheaper candidate.
    best = max(evaluated, key=lambda s: s.accuracy())
    ties = [best, *(s for s in evaluated if s is not best and _paired(s, best) >= 0)]
    kept = next((s for s in ties if s.name == fallback), None)
    if kept is not None and kept is not best:
        return kept, (f"the default, within a standard error of the best ({best.name}, "
                      f"{100 * best.accuracy():.1f}%)")
    cheapest = kept or min(ties, key=lambda s: (s.cost, -s.accuracy()))
    if cheapest is best:
        return best, f"best cross-validated accuracy, {100 * best.accuracy():.1f}%"
    return cheapest, (f"within a standard error of the best ({best.name}, "
                      f"{100 * best.accuracy():.1f}%) and cheaper")


def _score_or_name(scores: list[Score], name: str) -> Score | str:
    return next((s for s in scores if s.name == name), name)


#: The single candidates "ensembles" selection also considers; the fixed choice, in order.
_FEW = ("self-train-finetune-2", "self-train-finetune", "self-train-finetune-views", "self-train",
        "self-train-views", "self-train-static", "pseudo-pairs", "pairs-probe", "pairs-finetune")


#: Texts per step of the in-batch pair phase, where SetFit's does not fit the budget.
IN_BATCH = 32

FIXED = ("self-train-finetune", "self-train", "self-train-views", "self-train-static",
         "pairs-probe", "vectors-probe", "tfidf")


def _name(chosen: Score | str) -> str:
    return chosen if isinstance(chosen, str) else chosen.name


def _recipe_of(chosen: Score | str, recipes: dict[str, Recipe]) -> Recipe:
    if isinstance(chosen, Score) and chosen.members:
        return Mean([recipes[m] for m in chosen.members], name=chosen.name)
    return recipes[_name(chosen)]


# -- the table ---------------------------------------------------------------------------------


def _table(scores: list[Score], chosen: str) -> list[dict[str, Any]]:
    """One row per candidate, best first; the chosen one marked (a row of its own, without a
    figure, when the budget left it out of the cross-validation)."""
    rows = []
    for s in sorted(scores, key=lambda s: -s.accuracy()):
        rows.append({"candidate": s.name, "accuracy": round(100 * s.accuracy(), 2),
                     "ci95": round(100 * s.ci95(), 2), "folds": s.folds,
                     "seconds_per_fold": round(float(np.median(s.seconds)), 2) if s.seconds else None,
                     "chosen": s.name == chosen})
    if not any(r["chosen"] for r in rows):
        rows.insert(0, {"candidate": chosen, "accuracy": None, "ci95": None, "folds": 0,
                        "seconds_per_fold": None, "chosen": True})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The cross-validation table as text: candidate, accuracy +- 95% interval, folds, time."""
    width = max([len(r["candidate"]) for r in rows] + [9])
    lines = [f"  {'candidate':<{width}}  CV accuracy     folds  s/fold",
             f"  {'-' * width}  --------------  -----  ------"]
    for r in rows:
        mark = "*" if r["chosen"] else " "
        secs = f"{r['seconds_per_fold']:.1f}" if r["seconds_per_fold"] is not None else "-"
        acc = ("not run      " if r["accuracy"] is None
               else f"{r['accuracy']:5.1f} +- {r['ci95']:4.1f}")
        lines.append(f"{mark} {r['candidate']:<{width}}  {acc}   {r['folds']:>5}  {secs:>6}")
    return "\n".join(lines)
