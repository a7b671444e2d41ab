"""The candidates of ``--recipe auto``: the recipes that apply to what was given (the
``--init`` folders, unlabeled text or not, the labels of the smallest class), by name, and a
rough time for fitting each, from its encoder passes.

    >>> [r.name for r in candidates([Init.read("runs/vecs")], unlabeled=False)]  # doctest: +SKIP
    ['tfidf', 'vectors-probe', 'vectors-channel']
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from warmstart.errors import WarmstartError, with_article
from warmstart.labeled import LabeledDataset
from warmstart.transfer.recipes import (
    FineTune,
    Mean,
    PairsAgain,
    Probe,
    Prototype,
    Recipe,
    SelfTrain,
    VectorsChannel,
    Workspace,
)


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

    def vectors_probe(init: Init, pooling: str = "mean") -> Recipe:
        # C by cross-validation, not a fixed C=1, which overfits standardised averages (dev
        # splits of the demo and online_shopping, 11 cells: this probe +2.12 [+1.07, +3.17],
        # self-train-static +0.49 [+0.09, +0.89]; docs/benchmarks.md, the sixth search).
        return _named(Probe("vectors", init.path, C=0.0, pooling=pooling),
                      tag("vectors-probe", init, vectors))

    tfidf = Probe("tfidf", C=10.0)
    views: list[Recipe] = [tfidf, *(vectors_probe(v) for v in vectors)]
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
            # views teach themselves and the word-vector channel. The labels keep half the
            # students' weight (dev splits: +0.62 [-0.12, +1.36] on the demo's over 5 seeds,
            # level on online_shopping's over 3).
            # Its vectors probes read each text's mean and elementwise max word vector (dev
            # splits: +0.47 [+0.02, +0.92] on the demo's over 5 seeds, level on online_shopping
            # over 3: +0.26 [-0.21, +0.73] in all 11 cells; the probe alone gained nothing
            # measured, -0.03 [-0.97, +0.90], so it keeps the mean).
            pooled = [tfidf, *(vectors_probe(v, "mean+max") for v in vectors)]
            out.append(SelfTrain(Mean(pooled, name="mean-of-views"), [*pooled, *channels],
                                 name="self-train-static", label_share=0.5))
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


def is_one_of(name: str, bases: Sequence[str]) -> bool:
    """Whether ``name`` is one of ``bases``, with or without an init's name in brackets."""
    return any(name == b or name.startswith(b + "(") for b in bases)


# -- how long a candidate takes ---------------------------------------------------------------


def estimate_seconds(recipe: Recipe, labeled: LabeledDataset, n_pool: int,
                     ws: Workspace, *, pairs_done: bool = False) -> float:
    """A rough time for fitting ``recipe`` on ``labeled`` and ``n_pool`` unlabeled texts: its
    encoder passes (pair phase steps, the pool read once, fine-tuning rows; a training pass
    counted as four forward passes), at the speed the frozen encoder reads labeled texts.
    ``pairs_done``: the pair phase it needs has run already (another candidate of the fold)."""
    encoders = encoders_in(recipe)
    if not encoders:
        return 1.0
    if ws.seconds_per_text is None:  # measured once, on a warm encoder
        # A first pass loads the encoder and builds its kernels for these shapes: about 40x a
        # warm pass (MiniLM, 16 texts), and an estimate from it ruled out every recipe that
        # reads the encoder. A space added to the texts keeps either pass off cached features.
        frozen = ws.frozen(encoders[0])
        frozen.features([s + " " for s in labeled.texts[:64]])
        sample = [s + "  " for s in labeled.texts[:64]]
        t = time.perf_counter()
        frozen.features(sample)
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
    pairs = 0.0 if pairs_done or not recipe.uses_tuned else 4 * _pair_phase_texts(n, ws)
    if isinstance(recipe, FineTune):  # its epochs over the rows (labels repeated), the head
        return pairs + 4 * recipe.epochs * 1.25 * n + n
    if isinstance(recipe, PairsAgain):
        return pairs + 4 * 2 * recipe.pairs * n * 2 + n
    return pairs


def _pair_phase_texts(n: float, ws: Workspace) -> float:
    """Texts the pair phase trains on, for ``n`` labeled examples: two per pair, ``pairs``
    positive and ``pairs`` negative per example (SetFit's), or each example once an epoch
    (in-batch)."""
    if ws.in_batch:
        return ws.in_batch_epochs * n
    return 2 * ws.pairs * n * 2 * ws.pair_epochs


def pool_that_fits(recipe: Recipe, labeled: LabeledDataset, pool: list[str], ws: Workspace,
                   seconds: float) -> list[str]:
    """The first texts of ``pool``, as many as fitting ``recipe`` on them is estimated to
    allow in ``seconds`` (at least 200, or all there are)."""
    fixed = estimate_seconds(recipe, labeled, 0, ws)
    per_text = (estimate_seconds(recipe, labeled, len(pool), ws) - fixed) / max(len(pool), 1)
    if per_text <= 0 or fixed + per_text * len(pool) <= seconds:
        return pool
    return pool[: max(min(200, len(pool)), int((seconds - fixed) / per_text))]


def vector_views(recipes: Sequence[Recipe]) -> list[tuple[str, str]]:
    """(vectors, pooling) of every word-vector probe in ``recipes``, their parts included."""
    return sorted({(r.init, r.pooling) for recipe in recipes for r in _parts(recipe)
                   if isinstance(r, Probe) and r.view == "vectors"})


def encoders_in(recipe: Recipe) -> list[str]:
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
