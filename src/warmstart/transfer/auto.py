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
   (successive halving), as long as the time budget leaves room for the final fit.
3. **The choice** (``select``): ``ensembles`` (the default) takes the best of the ensembles
   and the self-training and pair-phase candidates; ``best`` the best of every candidate.
   A candidate within one paired standard error of the best counts as a tie, and ties go to
   the cheaper candidate. Where the budget left the encoder's self-training out of the
   cross-validation (with a handful of labels, always), the choice is the recipe found best
   on the development sets (``FIXED``; ``fixed`` takes it whatever the folds say), unless
   the encoder's frozen probe cross-validates clearly below the best candidate without an
   encoder (a weak encoder: with 100 labels or more, by two paired standard errors) or its
   final fit would not fit in the time left.
4. The chosen recipe is fitted on all labels and the unlabeled texts (with an encoder, as many
   as the time left allows, at most ``pool_max``; without, up to ``static_pool_max``) and
   saved as one classifier folder, with the cross-validation table in its ``warmstart.json``.

The accuracy of the chosen candidate in the table is a little optimistic (it is the maximum of
several noisy estimates); the table says how many folds each figure comes from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.errors import WarmstartError, with_article
from warmstart.evaluation.classification import correct_top1
from warmstart.labeled import LabeledDataset
from warmstart.transfer.recipes import (
    FineTune,
    Fitted,
    Mean,
    PairsAgain,
    Probe,
    Prototype,
    Recipe,
    SelfTrain,
    VectorsChannel,
    Workspace,
)
from warmstart.transfer.settings import SELECTIONS


@dataclass
class Init:
    """A pretrained starting point given with ``--init``: its path, kind and short name."""

    path: str
    kind: str  # "encoder" or "vectors"
    name: str

    @classmethod
    def read(cls, path: str) -> Init:
        from warmstart.transfer.starting_body import artifact_kind

        if not Path(path).exists():
            raise WarmstartError(f"--init {path}: no such folder")
        kind = artifact_kind(path)
        if kind not in ("encoder", "vectors"):
            raise WarmstartError(f"--init {path}: {with_article(str(kind))} artifact; --recipe reads encoders "
                                 "(ours or Hugging Face BERT-family folders) and word vectors")
        return cls(path, kind, Path(path).name or path)


def candidates(inits: Sequence[Init], *, unlabeled: bool, per_class: int = 0) -> list[Recipe]:
    """The recipes ``--recipe auto`` compares, given the ``inits``, whether there is unlabeled
    text, and the labels of the smallest class (end-to-end fine-tuning on the labels alone
    from 16). Names are unique; an init's name is added where there are several."""
    encoders = [i for i in inits if i.kind == "encoder"]
    vectors = [i for i in inits if i.kind == "vectors"]

    def tag(base: str, init: Init, same: list[Init]) -> str:
        return base if len(same) == 1 else f"{base}({init.name})"

    views: list[Recipe] = [Probe("tfidf", C=10.0)]
    for v in vectors:
        views.append(_named(Probe("vectors", v.path), tag("vectors-probe", v, vectors)))
    channels: list[Recipe] = [_named(VectorsChannel(v.path), tag("vectors-channel", v, vectors))
                              for v in vectors]
    out: list[Recipe] = [*views, *channels]
    tuned: list[Recipe] = []
    for e in encoders:
        out.append(_named(Probe("frozen", e.path), tag("frozen-probe", e, encoders)))
        tuned.append(_named(Probe("tuned", e.path), tag("pairs-probe", e, encoders)))
        out.append(tuned[-1])
        out.append(_named(Prototype("tuned", e.path), tag("pairs-prototype", e, encoders)))
        if per_class >= 16:  # end to end on the labels alone needs a few of them
            out.append(_named(FineTune(e.path), tag("pairs-finetune", e, encoders)))
    if unlabeled:
        parts = [*tuned, *views]
        # The teacher: the pair-tuned encoder's probe where there is an encoder (on the
        # development sets a TF-IDF probe of a handful of labels made its pseudo-labels worse),
        # else the mean of the views.
        teacher: Recipe = (tuned[0] if tuned else
                           Mean(views, name="mean-of-views") if len(views) > 1 else views[0])
        # Students that read the texts as the views do (feature space: cheap): the best
        # encoder's probe, or every view ...
        if tuned:
            out.append(SelfTrain(teacher, tuned[:1], name="self-train"))
        out.append(SelfTrain(teacher, parts, name="self-train-views"))
        if vectors:
            # Without the encoder (cheap, and the choice where the encoder is weak): the static
            # views teach themselves and the word-vector channel.
            static = Mean(views, name="mean-of-views") if len(views) > 1 else views[0]
            out.append(SelfTrain(static, [*views, *channels], name="self-train-static"))
        # ... and the encoder fine-tuned end to end on labels + pseudo-labels, alone or
        # beside the other views' students.
        for e in encoders:
            ft = _named(FineTune(e.path), tag("pairs-finetune", e, encoders))
            first = SelfTrain(teacher, [ft], name=tag("self-train-finetune", e, encoders))
            out.append(first)
            # A second round: the fine-tuned student labels the texts again, and a new student
            # learns from half of them.
            out.append(SelfTrain(first, [_named(FineTune(e.path), ft.name)], share=0.5,
                                 name=tag("self-train-finetune-2", e, encoders)))
            out.append(SelfTrain(teacher, [ft, *views],
                                 name=tag("self-train-finetune-views", e, encoders)))
            again = PairsAgain(e.path)
            out.append(SelfTrain(teacher, [again], name=tag("pseudo-pairs", e, encoders)))
    return out


def named_recipe(name: str, inits: Sequence[str], *, unlabeled: bool) -> Recipe:
    """The recipe ``--recipe NAME`` runs: the candidate of that name that ``auto`` would try
    (with any number of labels)."""
    found = {r.name: r for r in candidates([Init.read(p) for p in inits], unlabeled=unlabeled,
                                           per_class=10**9)}
    if name not in found:
        need = " (it needs --unlabeled)" if name.startswith("self-train") and not unlabeled else ""
        raise WarmstartError(f"--recipe {name}: not a recipe for what was given{need}; with "
                             f"these --init and --unlabeled: auto, {', '.join(found)}")
    return found[name]


def _named(recipe: Recipe, name: str) -> Recipe:
    recipe.name = name
    return recipe


# -- cross-validation ----------------------------------------------------------------------------


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


@dataclass
class AutoResult:
    fitted: Fitted
    chosen: str
    reason: str
    table: list[dict[str, Any]]
    seconds: float
    folds: int
    repeats: int
    study: dict[str, Fitted] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)


def _splits(y: np.ndarray, folds: int, repeats: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    from sklearn.model_selection import StratifiedKFold

    out = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed * 1000 + r)
        out.append([(tr, va) for tr, va in skf.split(np.zeros(len(y)), y)])
    return out


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
    for v in (i for i in init_list if i.kind == "vectors"):
        ws.vectors(v.path, [*labeled.texts, *wide])  # one vocabulary for every fold
    recipes = candidates(init_list, unlabeled=bool(pool),
                         per_class=int(np.bincount(labeled.y).min()))
    say = echo or (lambda _: None)
    say(f"auto: {len(recipes)} candidates, cross-validation on {len(labeled)} labels"
        + (f", {len(wide):,} unlabeled texts" if wide else "")
        + (f", {time_budget:.0f} s budget" if time_budget else ""))
    by_name = {r.name: r for r in recipes}
    fallback = next(by_name[n] for base in FIXED for n in by_name if _is(n, (base,)))
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
    if costly:
        more = cross_validate(costly, labeled, cv_pool, ws, folds=folds, repeats=repeats,
                              seed=seed, deadline=deadline, reserve=reserve, echo=say,
                              guess=lambda r, fold: estimate_seconds(
                                  r, fold, len(cv_pool), ws, pairs_done=ws.has_tuned))
        cv.scores.update(more.scores)
        cv.oof.update(more.oof)
    singles = [s for s in cv.scores.values() if s.folds]
    everything = singles + _ensembles(singles, cv.oof, labeled.y)
    default = _default(fallback, cv.scores, labeled, ws, deadline)
    chosen, reason = _choose(everything, select, fallback=default)
    name = _name(chosen)
    recipe = _recipe_of(chosen, by_name)
    if not _encoders_in(recipe):
        pool = wide  # no encoder reads it: every text sampled
    elif deadline is not None:  # as much of the pool as the time left allows
        pool = pool_that_fits(recipe, labeled, pool, ws, deadline - time.monotonic())
    say(f"auto: chose {name} ({reason}); fitting it on all {len(labeled)} labels"
        + (f" and {len(pool):,} unlabeled texts" if pool else ""))
    fitted = recipe.fit(labeled, pool, ws, seed=seed)
    result = AutoResult(fitted=fitted, chosen=name, reason=reason,
                        table=_table(everything, name), seconds=time.monotonic() - start,
                        folds=cv.folds, repeats=max([s.repeats_done for s in singles] or [0]))
    if study:  # every candidate fitted, and what each way of choosing would have chosen
        ws.deadline = None
        result.study = {r.name: (fitted if r.name == name else
                                 r.fit(labeled, pool, ws, seed=seed)) for r in recipes}
        result.choices = {s: _name(_choose(everything, s, fallback=default)[0])
                          for s in SELECTIONS}
    return result


def estimate_seconds(recipe: Recipe, labeled: LabeledDataset, n_pool: int,
                     ws: Workspace, *, pairs_done: bool = False) -> float:
    """A rough time for fitting ``recipe`` on ``labeled`` and ``n_pool`` unlabeled texts: its
    encoder passes (pair phase steps, the pool read once, fine-tuning rows; a training pass
    counted as four forward passes), at the speed the frozen encoder reads labeled texts.
    ``pairs_done``: the pair phase it needs has run already (another candidate of the fold)."""
    encoders = _encoders_in(recipe)
    if not encoders:
        return 1.0
    if ws.seconds_per_text is None:  # measured once: a fresh pass over some labeled texts
        sample = [s + " " for s in labeled.texts[:64]]
        t = time.perf_counter()
        ws.frozen(encoders[0]).features(sample)
        ws.seconds_per_text = (time.perf_counter() - t) / len(sample)
    passes = _passes(recipe, float(len(labeled)), float(n_pool), ws, pairs_done=pairs_done)
    return 1.3 * passes * ws.seconds_per_text


def _passes(recipe: Recipe, n: float, n_pool: float, ws: Workspace, *,
            pairs_done: bool) -> float:
    """Encoder passes of fitting ``recipe`` on ``n`` texts with ``n_pool`` unlabeled ones; a
    training pass counts as four forward passes, and the pair phase once for the whole."""
    if isinstance(recipe, SelfTrain):  # the teacher reads the pool; students train on more
        rows = n + recipe.share * n_pool
        return (_passes(recipe.teacher, n, n_pool, ws, pairs_done=pairs_done) + n_pool
                + sum(_passes(s, rows, n_pool, ws, pairs_done=True) for s in recipe.students))
    if isinstance(recipe, Mean):
        return sum(_passes(p, n, n_pool, ws, pairs_done=pairs_done or i > 0)
                   for i, p in enumerate(recipe.parts))
    pairs = 0.0 if pairs_done or not recipe.uses_tuned else 4 * 2 * ws.pairs * n * 2 * ws.pair_epochs
    if isinstance(recipe, FineTune):  # its epochs over the rows (labels repeated), the head
        return pairs + 4 * recipe.epochs * 1.25 * n + n
    if isinstance(recipe, PairsAgain):
        return pairs + 4 * 2 * recipe.pairs * n * 2 + n
    return pairs


def pool_that_fits(recipe: Recipe, labeled: LabeledDataset, pool: list[str], ws: Workspace,
                   seconds: float) -> list[str]:
    """The first texts of ``pool``, as many as fitting ``recipe`` on them is estimated to
    allow in ``seconds`` (at least 200, or all there are)."""
    fixed = estimate_seconds(recipe, labeled, 0, ws)
    per_text = (estimate_seconds(recipe, labeled, len(pool), ws) - fixed) / max(len(pool), 1)
    if per_text <= 0 or fixed + per_text * len(pool) <= seconds:
        return pool
    return pool[: max(min(200, len(pool)), int((seconds - fixed) / per_text))]


def _encoders_in(recipe: Recipe) -> list[str]:
    """The encoders ``recipe`` reads texts with (its parts' ``init``)."""
    return sorted({str(getattr(r, "init", "")) for r in _parts(recipe) if r.reads_encoder})


def _parts(recipe: Recipe) -> list[Recipe]:
    """``recipe`` and every recipe inside it."""
    inner: list[Recipe] = []
    if isinstance(recipe, SelfTrain):
        inner = [recipe.teacher, *recipe.students]
    elif isinstance(recipe, Mean):
        inner = list(recipe.parts)
    return [recipe, *(p for r in inner for p in _parts(r))]


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


def _ensembles(singles: list[Score], oof: dict[str, np.ndarray], y: np.ndarray) -> list[Score]:
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
    views = [n for n in by if n == "tfidf" or _is(n, ("vectors-probe", "pairs-probe"))]
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


def _default(fallback: Recipe, scores: dict[str, Score], labeled: LabeledDataset,
             ws: Workspace, deadline: float | None) -> str | None:
    """The name of the recipe to take where cross-validation cannot decide (``fallback``, the
    one found best on the development sets), or None where it does not apply here: it reads
    the texts through an encoder whose frozen probe cross-validates clearly below the best
    candidate without one (a weak encoder: self-training it spreads its errors; judged with
    100 labels or more, where the folds can tell), or its
    final fit would not end before ``deadline``."""
    if _encoders_in(fallback):
        frozen = [s for s in scores.values() if s.repeats_done and _is(s.name, ("frozen-probe",))]
        static = [s for s in scores.values() if s.repeats_done and not s.name.startswith("frozen")]
        # Only where the folds can tell: at least 100 labels, and two paired standard errors
        # (with a handful of labels the folds are too noisy, and pessimistic for the encoder).
        if frozen and static and len(labeled) >= 100:
            best = max(static, key=lambda s: s.accuracy())
            if _paired(max(frozen, key=lambda s: s.accuracy()), best, z=2.0) < 0:
                return None
    if deadline is not None:
        left = deadline - time.monotonic()
        if estimate_seconds(fallback, labeled, 0, ws) > left:
            return None
    return fallback.name


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
    recipes, ``best`` the best of all, among those cross-validated on at least one whole
    repeat. When that excludes a serious candidate (the budget did not reach it), the choice
    is ``fallback``, the recipe found best on the development sets. Without a ``fallback``
    (see :func:`_default`) the choice is the best cross-validated candidate (TF-IDF when none
    was).
    """
    done = {s.name for s in scores if s.repeats_done}
    if select == "fixed" and fallback is not None:
        return _score_or_name(scores, fallback), "the fixed choice"
    pool = scores if select == "best" else [s for s in scores if s.members or _is(s.name, _FEW)]
    evaluated = [s for s in pool if s.repeats_done]
    if fallback is not None and (not evaluated or (_is(fallback, _FEW) and fallback not in done)):
        return _score_or_name(scores, fallback), (
            "the default; the time budget did not cross-validate it" if fallback not in done
            else "the default")
    evaluated = evaluated or [s for s in scores if s.repeats_done]
    if not evaluated:
        return _score_or_name(scores, "tfidf"), "the time budget cross-validated no candidate"
    # Ties (within a paired standard error of the best) go to the cheaper candidate.
    best = max(evaluated, key=lambda s: s.accuracy())
    ties = [best, *(s for s in evaluated if s is not best and _paired(s, best) >= 0)]
    cheapest = min(ties, key=lambda s: (s.cost, -s.accuracy()))
    if cheapest is best:
        return best, f"best cross-validated accuracy, {100 * best.accuracy():.1f}%"
    return cheapest, (f"within a standard error of the best ({best.name}, "
                      f"{100 * best.accuracy():.1f}%) and cheaper")


def _score_or_name(scores: list[Score], name: str) -> Score | str:
    return next((s for s in scores if s.name == name), name)


#: The single candidates "ensembles" selection also considers; the fixed choice, in order.
_FEW = ("self-train-finetune-2", "self-train-finetune", "self-train-finetune-views", "self-train",
        "self-train-views", "self-train-static", "pseudo-pairs", "pairs-probe", "pairs-finetune")
FIXED = ("self-train-finetune", "self-train", "self-train-views", "self-train-static",
         "pairs-probe", "vectors-probe", "tfidf")


def _is(name: str, bases: Sequence[str]) -> bool:
    """Whether ``name`` is one of ``bases``, with or without an init's name in brackets."""
    return any(name == b or name.startswith(b + "(") for b in bases)


def _name(chosen: Score | str) -> str:
    return chosen if isinstance(chosen, str) else chosen.name


def _recipe_of(chosen: Score | str, recipes: dict[str, Recipe]) -> Recipe:
    if isinstance(chosen, Score) and chosen.members:
        return Mean([recipes[m] for m in chosen.members], name=chosen.name)
    return recipes[_name(chosen)]


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
