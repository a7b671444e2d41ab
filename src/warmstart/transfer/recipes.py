"""Recipes: named ways of turning a few labels (and unlabeled text) into a classifier.

Every recipe has one interface, ``recipe.fit(labeled, unlabeled, workspace, seed=...)``; it
returns a :class:`Fitted` model whose ``predict_proba(texts)`` gives class probabilities and
whose ``to_classifier()`` is the artifact to save (a :class:`Classifier`, or an
:class:`~warmstart.transfer.ensemble.Ensemble` of several). ``--recipe NAME`` runs one, and
``--recipe auto`` (:mod:`warmstart.transfer.auto`) compares them by cross-validation.

* :class:`Probe`: a logistic regression on one **view** of the texts: TF-IDF of words
  (or characters), averaged static word vectors, a frozen encoder, or the encoder after
  SetFit's pair phase on the labels (``tuned``);
* :class:`Prototype`: the nearest class centroid in a view;
* :class:`FineTune`: the encoder (after the pair phase) and a head trained end to end;
* :class:`SelfTrain`: a teacher recipe labels the unlabeled texts; the texts of each class it
  is surest of join the labels, and student recipes learn from both. Students that read the
  texts another way than the teacher (TF-IDF under an encoder) learn what it missed;
* :class:`Mean`: several recipes, their probabilities averaged.

What recipes of one run share lives in a :class:`Workspace`: a view's features are computed
once per text, and the pair phase runs once per (encoder, labeled examples, seed), however
many recipes read the tuned encoder.
"""

from __future__ import annotations

import copy
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.transfer.bodies import Body, TfidfBody, WordVectorBody
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.heads import features_of, linear_head, prototype_head
from warmstart.transfer.model import Regularisation, Task, TextClassifier
from warmstart.transfer.semisup import LABEL_SHARE, PseudoLabels, pseudo_label
from warmstart.transfer.settings import FinetuneConfig
from warmstart.transfer.starting_body import make_body

#: The kinds of view a probe or prototype reads texts through.
VIEWS = ("tfidf", "vectors", "frozen", "tuned")


def task_of(labeled: LabeledDataset) -> Task:
    return Task("label", list(labeled.labels))


def _key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


# -- views -------------------------------------------------------------------------------------


class View:
    """A frozen body and the features it gives each text, computed once per text."""

    def __init__(self, name: str, body: Body, *, precision: str = "auto",
                 standardize: bool = False) -> None:
        self.name = name
        self.body = body
        self.precision = precision
        self.standardize = standardize  # the head standardises these features first
        self.sparse = isinstance(body, TfidfBody)
        self._rows: dict[str, np.ndarray] = {}

    def features(self, texts: Sequence[str]) -> Any:
        """(N, C) features: a scipy sparse matrix for TF-IDF, else a float32 array."""
        texts = list(texts)
        if self.sparse:
            assert isinstance(self.body, TfidfBody)
            return self.body.sparse_features(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            x = features_of(self.body, missing, precision=self.precision)
            self._rows.update(zip(missing, x, strict=True))
        if not texts:
            return np.zeros((0, self.body.dim), dtype=np.float32)
        return np.stack([self._rows[t] for t in texts])


@dataclass
class Workspace:
    """What the recipes of one run share: settings, loaded bodies, features and tuned bodies.

    ``deadline`` (a ``time.monotonic()`` value, or None) is when fitting must be over; the
    pair phase and fine-tuning stop there (with what they have), so a run keeps its budget.
    """

    max_len: int = 256
    truncation: str = "head"
    precision: str = "auto"
    progress: bool = False
    pairs: int = 20  # SetFit's num_iterations
    pair_batch: int = 16
    pair_lr: float = 2e-5
    pair_epochs: float = 1.0
    # The pair phase on every two texts of a batch of ``in_batch`` (0: SetFit's pairs, above):
    # about an eighth of the encoder passes, for where SetFit's do not fit the time budget.
    in_batch: int = 0
    in_batch_epochs: float = 10.0
    in_batch_lr: float = 5e-5
    deadline: float | None = None
    tokenizer: str = "auto"  # TF-IDF's words: auto (chars for Chinese, else words), or a name
    lowercase: bool = True
    _frozen: dict[str, View] = field(default_factory=dict)
    _tuned: dict[str, View] = field(default_factory=dict)
    _vectors: dict[tuple[str, str], View] = field(default_factory=dict)  # (init, pooling)
    _tfidf: dict[str, View] = field(default_factory=dict)
    finetuned: dict[str, Fitted] = field(default_factory=dict)
    pair_runs: int = 0  # pair phases run so far, and the time of the last one
    pair_seconds: float = 0.0
    seconds_per_text: float | None = None  # a frozen encoder's reading speed, once measured

    def seconds_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def _config(self, init: str, **kw: Any) -> FinetuneConfig:
        return FinetuneConfig(init=init, method="probe", max_len=self.max_len,
                              truncation=self.truncation, **kw)

    def frozen(self, init: str) -> View:
        """The encoder ``init`` as it was pretrained, pooled as its pipeline says."""
        if init not in self._frozen:
            torch.manual_seed(0)
            body, _ = make_body(self._config(init), [])
            self._frozen[init] = View(f"frozen:{init}", body, precision=self.precision)
        return self._frozen[init]

    def tuned(self, init: str, labeled: LabeledDataset, seed: int) -> View:
        """The encoder ``init`` after SetFit's pair phase on ``labeled`` (run once per
        (encoder, examples, seed)): SetFit's pairs, or in-batch pairs with ``in_batch``."""
        from warmstart.transfer.fewshot import contrastive_tune, in_batch_tune

        key = _key(init, labeled.content_hash(), seed, self.pairs, self.pair_lr, self.pair_epochs,
                   self.in_batch)
        if key not in self._tuned:
            start = time.perf_counter()
            body = copy.deepcopy(self.frozen(init).body)
            ids = body.encode(labeled.texts)
            common: dict[str, Any] = dict(
                seed=seed, progress=self.progress, precision=self.precision,
                stop_after=max(1.0, self.seconds_left()) if self.deadline else 0.0)
            if self.in_batch:
                in_batch_tune(body, ids, labeled.y, batch_texts=self.in_batch,
                              lr=self.in_batch_lr, epochs=self.in_batch_epochs, **common)
            else:
                contrastive_tune(body, ids, labeled.y, pairs=self.pairs,
                                 batch_pairs=self.pair_batch, lr=self.pair_lr,
                                 epochs=self.pair_epochs, **common)
            body.cpu().eval()
            self._tuned[key] = View(f"tuned:{init}", body, precision=self.precision)
            self.pair_seconds = time.perf_counter() - start
            self.pair_runs += 1
        return self._tuned[key]

    @property
    def has_tuned(self) -> bool:
        """Whether a pair-tuned encoder is at hand (this fold's, in cross-validation)."""
        return bool(self._tuned)

    def forget_tuned(self) -> None:
        """Drop the pair-tuned encoders (and their features, and the students fine-tuned from
        them): the next fold tunes anew."""
        self._tuned.clear()
        self.finetuned.clear()

    def vectors(self, init: str, texts: Sequence[str], pooling: str = "mean") -> View:
        """Static word vectors of ``init`` pooled (``mean`` or ``mean+max``) over the words of
        ``texts``' vocabulary and the vectors' own (made once per run: give every text the
        run will read; a second pooling of ``init`` reads the first one's vocabulary)."""
        if (init, pooling) not in self._vectors:
            read = next((v.body for (i, _), v in self._vectors.items() if i == init), None)
            if isinstance(read, WordVectorBody):
                body: Body = read.with_pooling(pooling)
            else:
                torch.manual_seed(0)
                body, _ = make_body(self._config(init, pooling=pooling), list(texts))
            self._vectors[init, pooling] = View(f"vectors:{pooling}:{init}", body,
                                                standardize=True)
        return self._vectors[init, pooling]

    def tfidf(self, texts: Sequence[str], ngrams: int = 2, tokenizer: str = "") -> View:
        """TF-IDF of words (or characters) and their n-grams, fitted on ``texts``; with the
        workspace's tokenizer unless ``tokenizer`` names another."""
        from warmstart.tokenize import looks_chinese, make_tokenizer

        texts = list(texts)
        tokenizer = tokenizer or self.tokenizer
        of_texts = _key(texts)
        key = of_texts + _key(ngrams, tokenizer, self.lowercase)
        if key not in self._tfidf:  # a teacher and a student of one fold share it
            # Chinese by characters: the words tokenizer would keep runs of Han characters whole.
            name = (tokenizer if tokenizer != "auto"
                    else "chars" if looks_chinese(texts) else "words")
            body = TfidfBody.from_texts(
                texts, tokenizer=make_tokenizer(name, lowercase=self.lowercase),
                ngrams=ngrams, min_df=2 if len(texts) >= 200 else 1)
            # Keep the views of these texts only (another fold's are not read again).
            self._tfidf = {k: v for k, v in self._tfidf.items() if k.startswith(of_texts)}
            self._tfidf[key] = View("tfidf", body)
        return self._tfidf[key]


# -- fitted models -------------------------------------------------------------------------------


class Fitted(ABC):
    """A fitted recipe: class probabilities for texts, and the classifier to save."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    @abstractmethod
    def to_classifier(self, task: Task) -> Classifier: ...


class LinearFit(Fitted):
    """A linear head on a view's features."""

    def __init__(self, view: View, weight: np.ndarray, bias: np.ndarray) -> None:
        self.view, self.weight, self.bias = view, weight, bias

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        x = self.view.features(texts)
        return softmax(np.asarray(x @ self.weight.T) + self.bias, axis=1)

    def to_classifier(self, task: Task) -> Classifier:
        model = TextClassifier(self.view.body, [task], reg=Regularisation(dropout=0.0))
        model.set_head(task.name, self.weight, self.bias)
        return Classifier(model.eval(), precision=self.view.precision)


class ClassifierFit(Fitted):
    """A classifier trained end to end; its predictions are kept per text."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self._rows: dict[str, np.ndarray] = {}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            self._rows.update(zip(missing, self.classifier.predict_proba(missing), strict=True))
        return np.stack([self._rows[t] for t in texts]).astype(np.float64)

    def to_classifier(self, task: Task) -> Classifier:
        return self.classifier


class MeanFit(Fitted):
    """Named fitted models whose probabilities are averaged with weights."""

    def __init__(self, members: dict[str, Fitted], weights: Sequence[float] | None = None) -> None:
        self.members = members
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.weights = (w / w.sum()).tolist()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return sum(w * m.predict_proba(texts)  # type: ignore[return-value]
                   for w, m in zip(self.weights, self.members.values(), strict=True) if w > 0)

    def to_classifier(self, task: Task) -> Classifier:
        from warmstart.transfer.ensemble import Ensemble

        kept = {n: (m, w) for (n, m), w in zip(self.members.items(), self.weights, strict=True)
                if w > 0}
        if len(kept) == 1:
            return next(iter(kept.values()))[0].to_classifier(task)
        return Ensemble({n: m.to_classifier(task) for n, (m, _) in kept.items()},
                        [w for _, w in kept.values()])


# -- recipes -------------------------------------------------------------------------------------


class Recipe(ABC):
    """A way to fit a classifier from labeled texts and, optionally, unlabeled ones.

    ``pseudo`` (a student's fit in self-training) are texts labeled by a teacher; they train
    the head with the labels, while what the labels alone decide (the pair phase) keeps to
    ``labeled``.
    """

    name: str
    #: a rough share of the run's heavy work (encoder passes), to order and to break ties
    cost: float = 1.0

    @property
    def uses_tuned(self) -> bool:
        """Whether it reads an encoder after the pair phase (which recipes of a fold share)."""
        return False

    @property
    def reads_encoder(self) -> bool:
        """Whether it reads texts through its ``init`` encoder (as it is, or tuned)."""
        return False

    @abstractmethod
    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted: ...

    def __repr__(self) -> str:
        return self.name


def _with_pseudo(labeled: LabeledDataset, pseudo: LabeledDataset | None,
                 ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Texts and labels to fit on, and weights that keep the labels at least the share of the
    total weight the pseudo-labels ask (:class:`PseudoLabels`; a fifth for any other
    dataset), however many pseudo-labels there are."""
    if pseudo is None or not len(pseudo):
        return list(labeled.texts), labeled.y, None
    share = pseudo.label_share if isinstance(pseudo, PseudoLabels) else LABEL_SHARE
    up = max(1.0, share / (1.0 - share) * len(pseudo) / len(labeled))
    weight = np.concatenate([np.full(len(labeled), up), np.ones(len(pseudo))])
    return labeled.texts + pseudo.texts, np.concatenate([labeled.y, pseudo.y]), weight


def _repeated(labeled: LabeledDataset, pseudo: LabeledDataset | None) -> LabeledDataset:
    """The labels and pseudo-labels as one training set for the loop, which has no sample
    weights: the labels are repeated to the weight :func:`_with_pseudo` gives them."""
    texts, y, weight = _with_pseudo(labeled, pseudo)
    if weight is not None:
        up = int(round(weight[0]))
        texts = [*labeled.texts * (up - 1), *texts]
        y = np.concatenate([np.tile(labeled.y, up - 1), y])
    return LabeledDataset(texts=texts, y=y, labels=list(labeled.labels), multi_label=False,
                          source=labeled.source)


@dataclass(repr=False)
class Probe(Recipe):
    """Logistic regression (``C``) on one view: ``tfidf``, ``vectors``, ``frozen`` or ``tuned``.

    ``C=0`` chooses C by 5-fold cross-validation on the examples the probe is fitted on (as
    ``finetune --method probe`` does by default), or takes C=1 where a class has fewer than two
    of them."""

    view: str
    init: str = ""
    C: float = 1.0
    ngrams: int = 2
    tokenizer: str = ""  # TF-IDF's: the workspace's unless named (e.g. "jieba")
    pooling: str = "mean"  # word vectors': mean, or mean+max (their elementwise max beside)

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise WarmstartError(f"recipe view {self.view}: use one of {', '.join(VIEWS)}")
        self.name = self.view if self.view == "tfidf" else f"{self.view}-probe"
        self.cost = {"tfidf": 0.01, "vectors": 0.02, "frozen": 0.2, "tuned": 1.0}[self.view]

    @property
    def uses_tuned(self) -> bool:
        return self.view == "tuned"

    @property
    def reads_encoder(self) -> bool:
        return self.view in ("frozen", "tuned")

    def make_view(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace,
                  seed: int) -> View:
        if self.view == "tfidf":
            return ws.tfidf([*labeled.texts, *unlabeled], ngrams=self.ngrams,
                            tokenizer=self.tokenizer)
        if self.view == "vectors":
            return ws.vectors(self.init, [*labeled.texts, *unlabeled], pooling=self.pooling)
        if self.view == "frozen":
            return ws.frozen(self.init)
        return ws.tuned(self.init, labeled, seed)

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        view = self.make_view(labeled, unlabeled, ws, seed)
        texts, y, weight = _with_pseudo(labeled, pseudo)
        C = self.C or (0.0 if _smallest_class(y, len(labeled.labels)) >= 2 else 1.0)
        cfg = FinetuneConfig(C=C, standardize=view.standardize)
        w, b = linear_head(view.features(texts), y, task_of(labeled), cfg, sample_weight=weight)
        return LinearFit(view, w, b)


def _smallest_class(y: np.ndarray, n_labels: int) -> int:
    """Examples of the rarest class (of either side of each label, for multi-label ``y``)."""
    if y.ndim == 2:
        positives = y.sum(0)
        return int(min(positives.min(), (len(y) - positives).min()))
    return int(np.bincount(y, minlength=n_labels).min())


@dataclass(repr=False)
class Prototype(Probe):
    """The nearest class centroid in one view (Snell et al. 2017)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = f"{self.view}-prototype"

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        view = self.make_view(labeled, unlabeled, ws, seed)
        texts, y, _ = _with_pseudo(labeled, pseudo)
        x = view.features(texts)
        x = x.toarray() if view.sparse else x
        return LinearFit(view, *prototype_head(x, y, len(labeled.labels)))


@dataclass(repr=False)
class FineTune(Recipe):
    """The encoder, after the pair phase on the labels (``pairs``), and a head that starts
    as a probe, trained end to end with cross-entropy on the labels (and pseudo-labels)."""

    init: str
    pairs: bool = True
    epochs: float = 2.0
    lr: float = 3e-5
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.name = "finetune" if not self.pairs else "pairs-finetune"
        self.cost = 3.0

    @property
    def uses_tuned(self) -> bool:
        return self.pairs

    @property
    def reads_encoder(self) -> bool:
        return True

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        from warmstart.train.loop import TrainConfig
        from warmstart.transfer.training import train_classifier

        key = _key("finetune", self.init, self.pairs, self.epochs, self.lr, labeled.content_hash(),
                   pseudo.content_hash() if pseudo is not None else None,
                   getattr(pseudo, "label_share", None), seed)
        if key in ws.finetuned:  # self-training recipes of one fold share a student
            return ws.finetuned[key]
        start = ws.tuned(self.init, labeled, seed) if self.pairs else ws.frozen(self.init)
        body = copy.deepcopy(start.body)
        train_set = _repeated(labeled, pseudo)
        cfg = FinetuneConfig(init=self.init, method="finetune", head_init="probe", C=1.0,
                             standardize=False, max_len=ws.max_len, truncation=ws.truncation)
        tcfg = TrainConfig(lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
                           warmup=0.1, seed=seed, eval_every=0, checkpoint_every=0,
                           precision=ws.precision)
        left = ws.seconds_left()
        classifier, _ = train_classifier(body, [task_of(labeled)], {"label": (train_set, train_set)},
                                         cfg, tcfg, None, ws.progress, chosen={"epochs"},
                                         stop_after=max(1.0, left) if ws.deadline else 0.0)
        ws.finetuned[key] = ClassifierFit(classifier)
        return ws.finetuned[key]


@dataclass(repr=False)
class PairsAgain(Recipe):
    """A self-training student: the encoder, after the pair phase on the labels, tuned on
    pairs again, of the labels and the pseudo-labels (``pairs`` per example), then a probe."""

    init: str
    pairs: int = 5
    C: float = 1.0

    def __post_init__(self) -> None:
        self.name = "pairs-again-probe"
        self.cost = 4.0

    @property
    def uses_tuned(self) -> bool:
        return True

    @property
    def reads_encoder(self) -> bool:
        return True

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        from warmstart.transfer.fewshot import contrastive_tune

        view = ws.tuned(self.init, labeled, seed)
        texts, y, weight = _with_pseudo(labeled, pseudo)
        if pseudo is not None and len(pseudo):
            body = copy.deepcopy(view.body)
            contrastive_tune(body, body.encode(texts), y, pairs=self.pairs,
                             batch_pairs=ws.pair_batch, lr=ws.pair_lr, epochs=1.0, seed=seed + 1,
                             progress=ws.progress, precision=ws.precision,
                             stop_after=max(1.0, ws.seconds_left()) if ws.deadline else 0.0)
            view = View(f"tuned-again:{self.init}", body.cpu().eval(), precision=ws.precision)
        cfg = FinetuneConfig(C=self.C, standardize=False)
        w, b = linear_head(view.features(texts), y, task_of(labeled), cfg, sample_weight=weight)
        return LinearFit(view, w, b)


@dataclass(repr=False)
class VectorsChannel(Recipe):
    """fastText's supervised model with pretrained vectors as a frozen, standardised channel
    beside embeddings trained from the labels (``finetune --init VECTORS``), trained end to
    end. ``options``: other :func:`~warmstart.transfer.finetune.finetune` settings (``epochs``,
    ``hidden``, ``batch_size``...; the defaults when empty)."""

    init: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = "vectors-channel"
        self.cost = 0.3

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        from warmstart.transfer.finetune import finetune

        train_set = _repeated(labeled, pseudo)
        result = finetune(train_set, init=self.init, channels="static", dev_fraction=0,
                          seed=seed, progress=ws.progress, **self.options)
        return ClassifierFit(result.classifier)


@dataclass(repr=False)
class SelfTrain(Recipe):
    """A teacher labels the unlabeled texts; students learn from the labels and the
    ``share`` of the texts it is surest of (class-balanced); their mean is the model. The
    labels keep at least ``label_share`` of the students' training weight."""

    teacher: Recipe
    students: list[Recipe]
    share: float = 0.3
    name: str = ""
    label_share: float = LABEL_SHARE

    def __post_init__(self) -> None:
        self.name = self.name or (f"self-train[{self.teacher.name} -> "
                                  f"{'+'.join(s.name for s in self.students)}]")
        self.cost = self.teacher.cost + sum(s.cost for s in self.students) + 0.5

    @property
    def uses_tuned(self) -> bool:
        return self.teacher.uses_tuned or any(s.uses_tuned for s in self.students)

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        if not unlabeled:
            raise WarmstartError(f"recipe {self.name} learns from unlabeled text: give --unlabeled")
        if ws.deadline is not None and ws.seconds_per_text:
            # Near the deadline, read no more of the pool than half the time left allows.
            room = int(max(0.0, ws.seconds_left()) / 2 / ws.seconds_per_text)
            unlabeled = unlabeled[: max(room, min(len(unlabeled), 50))]
        teacher = self.teacher.fit(labeled, unlabeled, ws, seed=seed)
        found = pseudo_label(teacher.predict_proba(unlabeled), unlabeled, labeled,
                             share=self.share, label_share=self.label_share)
        return MeanFit({s.name: s.fit(labeled, unlabeled, ws, seed=seed, pseudo=found)
                        for s in self.students})


@dataclass(repr=False)
class Mean(Recipe):
    """Several recipes fitted on the same data; their probabilities averaged (``weights``)."""

    parts: list[Recipe]
    weights: list[float] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or "mean[" + "+".join(p.name for p in self.parts) + "]"
        self.cost = sum(p.cost for p in self.parts)

    @property
    def uses_tuned(self) -> bool:
        return any(p.uses_tuned for p in self.parts)

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        return MeanFit({p.name: p.fit(labeled, unlabeled, ws, seed=seed, pseudo=pseudo)
                        for p in self.parts}, self.weights)
