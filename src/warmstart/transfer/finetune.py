"""Train a text classifier from labeled data, starting from what warmstart pretrained.

    >>> from warmstart.transfer import finetune
    >>> result = finetune("train.tsv", dev="dev.tsv", init="runs/mlm", out="runs/clf",
    ...                   text_field="sentence", epochs=3)                      # doctest: +SKIP
    >>> result.classifier.predict(["a fine film"])                              # doctest: +SKIP

One entry point, three ways to transfer, chosen by ``init`` and ``method``:

* ``method="finetune"`` with an encoder (ours or a Hugging Face folder): the encoder and a
  linear head trained end to end by the training loop, with dropout, weight decay, L1, L2,
  elastic net, L2-SP, discriminative learning rates, gradual unfreezing, class weights,
  early stopping on dev, and batches bucketed by length.
* ``method="finetune"`` with word vectors (a ``vectors`` artifact) or no ``init``: fastText's
  supervised model (mean of word and word-n-gram embeddings), its embeddings initialised from
  the vectors, frozen (``freeze``) or trained.
* ``method="probe"``: frozen features (pooled encoder states or averaged word vectors) into a
  logistic regression with an L1, L2 or elastic-net penalty (scikit-learn); the fitted
  regression becomes the classifier's head, so the artifact predicts like any other.
  ``body="tfidf"`` reads texts as TF-IDF of words and word n-grams instead (sparse): the
  classic TF-IDF + logistic regression, as a warmstart classifier.

Several labeled datasets (``tasks={"topic": "agnews.tsv", ...}``) train one shared body with a
head per task (multi-task), mixing batches by size (``task_temperature``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.artifact import building, check_replaceable
from warmstart.config import opt, split_settings
from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset, ReadConfig
from warmstart.train.budget import Budget, parse_duration
from warmstart.train.loop import Monitor, TrainConfig, TrainResult, train
from warmstart.transfer.batches import ClassificationBatches, encode
from warmstart.transfer.bodies import Body, EncoderBody, TfidfBody, WordVectorBody, sorted_batches
from warmstart.transfer.classifier import Classifier, body_autocast
from warmstart.transfer.model import Regularisation, Task, TextClassifier

METHODS = ("finetune", "probe", "prototype")
BODIES = ("auto", "tfidf")
PENALTIES = ("l2", "l1", "elasticnet")
CHANNELS = ("trained", "static", "both")


@dataclass
class DataConfig(ReadConfig):
    """Where the labeled data is and how to read it."""

    dev: str = opt("", "dev file (default: --dev-fraction of the training data, stratified)")
    dev_fraction: float = opt(0.1, "share of the training data held out as dev when no --dev "
                                   "(0: train on every example; dev scores are then of the "
                                   "training data, for few labels)")


@dataclass
class FinetuneConfig:
    """How to transfer: where to start from, the method, the model and its regularisers."""

    init: str = opt("", "encoder, Hugging Face folder or vectors artifact to start from "
                        "(none: a word-vector classifier from random embeddings)")
    method: str = opt("finetune", "finetune (train end to end), probe (frozen features + "
                                  "logistic regression) or prototype (nearest class centroid)")
    body: str = opt("auto", "what reads the texts: auto (--init's encoder or vectors; without "
                            "--init a word-vector model) or tfidf (TF-IDF of words and word "
                            "n-grams up to --ngrams, fitted on the texts; nothing to pretrain: "
                            "with --method probe, the classic TF-IDF + logistic regression)")
    random_init: bool = opt(False, "the architecture of --init with fresh random weights "
                                   "(the baseline pretraining must beat)")
    pooling: str = opt("mean", "encoder pooling: mean, cls or pooler (BERT's; exportable)")
    normalize: str = opt("auto", "encoder: scale each pooled vector to length 1: yes, no or "
                                 "auto (yes for a probe or prototype on a sentence-transformers "
                                 "model that normalises its embeddings, as all-MiniLM-L6-v2)")
    max_len: int = opt(256, "tokens per text (longer texts are cut)")
    truncation: str = opt("head", "encoder: what a long text keeps: head, tail or head+tail "
                          "(a quarter from the start, the rest from the end)")
    dropout: float = opt(0.1, "dropout before the head")
    l1: float = opt(0.0, "L1 penalty on the trained weights")
    l2: float = opt(0.0, "L2 penalty on the trained weights (with --l1: the elastic net)")
    l2sp: float = opt(0.0, "L2-SP: penalty on the distance from the pretrained weights")
    layer_lr_decay: float = opt(1.0, "each encoder block below the top learns this much slower")
    unfreeze: float = opt(0.0, "gradual unfreezing over this share of training (0: off)")
    freeze: bool = opt(False, "keep the pretrained body (or word embeddings) fixed")
    class_weights: str = opt("none", "none or balanced (weigh classes by inverse frequency)")
    patience: int = opt(0, "stop after this many evaluations without a better dev score")
    monitor: str = opt("accuracy", "dev score that picks the best epoch: accuracy or loss")
    task_temperature: float = opt(1.0, "multi-task sampling: 1 proportional, larger flatter")
    head_init: str = opt("random", "finetune: the heads start random, or as a probe's logistic "
                         "regression on the starting features (LP-FT, Kumar et al. 2022)")
    penalty: str = opt("l2", "probe: l2, l1 or elasticnet")
    C: float = opt(0.0, "probe: inverse regularisation strength (0: chosen by 5-fold CV)")
    l1_ratio: float = opt(0.5, "probe: share of L1 in the elastic net")
    standardize: bool = opt(True, "probe: standardise the features with the training texts' "
                                  "mean and spread (off: raw features, as SetFit; steadier "
                                  "with a handful of labels)")
    dim: int = opt(100, "word-vector model: embedding size without --init")
    ngrams: int = opt(2, "word-vector model and TF-IDF: word n-grams up to this length "
                         "(1: words only)")
    buckets: int = opt(200_000, "word-vector model: hash buckets for the n-grams")
    hidden: int = opt(0, "word-vector model: a hidden layer of this size (0: linear)")
    min_count: int = opt(1, "word-vector model: words seen fewer times are dropped; TF-IDF: "
                            "terms in fewer texts are dropped")
    max_vocab: int = opt(200_000, "word-vector model: most words taken from --init's vectors; "
                                  "TF-IDF: most terms kept (the most frequent)")
    channels: str = opt("static", "word-vector model: where --init's vectors go: static (a "
                        "frozen, standardised channel beside trained embeddings that start "
                        "random), trained (the trained embeddings start from them, as fastText's "
                        "-pretrainedVectors) or both (Kim 2014)")
    lowercase: bool = opt(True, "word-vector model and TF-IDF: lowercase words (without --init)")
    tokenizer: str = opt("words", "word-vector model and TF-IDF without --init: how texts split "
                                  "into words: words, whitespace, jieba or chars (Chinese)")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise WarmstartError(f"--method {self.method}: use one of {', '.join(METHODS)}")
        if self.body not in BODIES:
            raise WarmstartError(f"--body {self.body}: use one of {', '.join(BODIES)}")
        if self.body == "tfidf" and self.init:
            raise WarmstartError(f"--body tfidf reads texts without a pretrained model; drop "
                                 f"--init {self.init} (or --body)")
        if self.penalty not in PENALTIES:
            raise WarmstartError(f"--penalty {self.penalty}: use one of {', '.join(PENALTIES)}")
        if self.channels not in CHANNELS:
            raise WarmstartError(f"--channels {self.channels}: use one of {', '.join(CHANNELS)}")
        if self.normalize not in ("auto", "yes", "no"):
            raise WarmstartError(f"--normalize {self.normalize}: use auto, yes or no")
        if self.head_init not in ("random", "probe"):
            raise WarmstartError(f"--head-init {self.head_init}: use random or probe")
        if self.class_weights not in ("none", "balanced"):
            raise WarmstartError(f"--class-weights {self.class_weights}: use none or balanced")
        if self.monitor not in ("accuracy", "loss"):
            raise WarmstartError(f"--monitor {self.monitor}: use accuracy or loss")
        if not 0.0 <= self.unfreeze < 1.0:
            raise WarmstartError(f"--unfreeze {self.unfreeze}: a share of training in [0, 1)")
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise WarmstartError(f"--layer-lr-decay {self.layer_lr_decay}: must be in (0, 1]")
        for name in ("l1", "l2", "l2sp", "dropout", "C"):
            if getattr(self, name) < 0:
                raise WarmstartError(f"--{name} {getattr(self, name)}: must not be negative")


@dataclass
class FewLabelsConfig:
    """Making the most of few labels: SetFit's pair phase, augmented copies, unlabeled text."""

    contrastive: int = opt(0, "few-shot: first tune the body on pairs of labeled texts "
                              "(SetFit): this many positive and as many negative pairs per "
                              "example and epoch (0: off; SetFit's default is 20)")
    contrastive_lr: float = opt(2e-5, "contrastive phase: learning rate")
    contrastive_epochs: float = opt(1.0, "contrastive phase: epochs of pairs")
    contrastive_batch: int = opt(16, "contrastive phase: pairs per step")
    augment: int = opt(0, "augmented copies of each labeled example added to the training data "
                          "(EDA; contextual with --augment-mlm)")
    augment_vectors: str = opt("", "word vectors whose neighbours are the augmenter's synonyms "
                                   "(without: EDA swaps and deletions only)")
    augment_mlm: str = opt("", "encoder with an MLM head: contextual replacement, mixed with EDA")
    unlabeled: str = opt("", "unlabeled text (any corpus format) for --self-train or "
                             "--consistency")
    unlabeled_field: str = opt("text", "--unlabeled: the text column or JSON key")
    unlabeled_max: int = opt(0, "use at most this many unlabeled texts, a seeded sample (0: all)")
    teacher: str = opt("", "self-training: a trained classifier (folder) whose confident "
                           "predictions on --unlabeled are the first round's pseudo-labels, "
                           "instead of this model's own; best of another kind than the "
                           "student (e.g. a probe on pretrained vectors teaching --body tfidf)")
    self_train: int = opt(0, "self-training rounds: pseudo-label --unlabeled with the classifier, "
                             "retrain on the labels and the pseudo-labels (0: off)")
    pseudo_threshold: float = opt(0.9, "self-training: lowest confidence of a pseudo-label")
    pseudo_balance: bool = opt(True, "self-training: keep as many pseudo-labels of each class")
    pseudo_per_class: int = opt(0, "self-training: keep at most this many pseudo-labels of each "
                                   "class, the most confident (0: all above the threshold)")
    pseudo_pairs: int = opt(0, "self-training with --contrastive: each round after the first "
                               "tunes the body on pairs again, of the labels and the "
                               "pseudo-labels, this many pairs per example (0: the pair phase "
                               "sees the labels only)")
    consistency: float = opt(0.0, "UDA: weight of the consistency loss between --unlabeled "
                                  "texts and their augmentations (0: off)")
    consistency_ratio: int = opt(3, "UDA: unlabeled texts per labeled text in a batch")
    consistency_confidence: float = opt(0.8, "UDA: unlabeled texts predicted with less "
                                             "confidence are left out of the loss")
    sharpen: float = opt(0.4, "UDA: temperature of the targets (below 1 sharpens; 1: none)")
    tsa: str = opt("none", "UDA: training-signal annealing: none, linear, log or exp")

    def __post_init__(self) -> None:
        for name in ("contrastive", "augment", "unlabeled_max", "self_train",
                     "consistency_ratio", "contrastive_batch", "pseudo_per_class",
                     "pseudo_pairs"):
            if getattr(self, name) < 0:
                raise WarmstartError(f"--{name.replace('_', '-')} {getattr(self, name)}: "
                                     "must not be negative")
        if self.consistency < 0:
            raise WarmstartError(f"--consistency {self.consistency}: must not be negative")
        if not 0.0 < self.pseudo_threshold <= 1.0:
            raise WarmstartError(f"--pseudo-threshold {self.pseudo_threshold}: a probability "
                                 "in (0, 1]")
        if self.sharpen <= 0:
            raise WarmstartError(f"--sharpen {self.sharpen}: must be positive")
        if self.tsa not in ("none", "linear", "log", "exp"):
            raise WarmstartError(f"--tsa {self.tsa}: use none, linear, log or exp")
        if self.teacher and not self.self_train:
            raise WarmstartError(f"--teacher {self.teacher} labels --unlabeled text for "
                                 "self-training: give --self-train 1 (or more rounds)")
        if (self.self_train or self.consistency) and not self.unlabeled:
            which = "--self-train" if self.self_train else "--consistency"
            raise WarmstartError(f"{which} learns from unlabeled text: give --unlabeled FILE")
        if self.pseudo_pairs and not (self.contrastive and self.self_train):
            raise WarmstartError(f"--pseudo-pairs {self.pseudo_pairs} repeats the pair phase in "
                                 "self-training: give --contrastive and --self-train too")
        if self.consistency and not self.consistency_ratio:
            raise WarmstartError("--consistency needs --consistency-ratio of at least 1")

    @property
    def any(self) -> bool:
        return bool(self.contrastive or self.augment or self.self_train or self.consistency)


SETTINGS = (DataConfig, FinetuneConfig, TrainConfig, FewLabelsConfig)
# Defaults of the loop that differ for fine-tuning, by body: (lr, epochs, batch size).
_DEFAULTS = {"encoder": {"lr": 5e-5, "epochs": 3.0, "batch_size": 32, "warmup": 0.1},
             "words": {"lr": 5e-3, "epochs": 5.0, "batch_size": 32, "warmup": 0.0}}


_MIN_STEPS = 200  # default budgets give at least this many steps (up to 20 epochs)


@dataclass
class FinetuneResult:
    classifier: Classifier
    training: TrainResult | None
    dev: dict[str, dict[str, Any]]  # task -> classification report on dev
    out: Path | None

    @property
    def summary(self) -> dict[str, Any]:
        first = next(iter(self.dev.values()), {})
        return {"out": str(self.out) if self.out else None,
                "dev_accuracy": first.get("accuracy"), "dev_macro_f1": first.get("macro_f1"),
                **({"steps": self.training.steps, "seconds": round(self.training.seconds, 1),
                    "stopped_by": self.training.stopped_by} if self.training else {})}


def _read(source: Any, data: DataConfig, *, like: LabeledDataset | None = None) -> LabeledDataset:
    """A labeled dataset from a path (or as given); ``like``: in that dataset's label map."""
    if isinstance(source, LabeledDataset):
        return source.with_labels(like.labels) if like is not None else source
    return data.read(source, labels=like.labels if like is not None else None,
                     multi_label=like.multi_label if like is not None else None)


def _split(train_set: LabeledDataset, data: DataConfig, seed: int) -> tuple[LabeledDataset, LabeledDataset]:
    if data.dev:
        return train_set, _read(data.dev, data, like=train_set)
    if data.dev_fraction == 0:  # every label trains; the "dev" scores are training scores
        return train_set, train_set
    return train_set.split(data.dev_fraction, seed=seed)


def make_body(cfg: FinetuneConfig, texts: list[str]) -> tuple[Body, str | None]:
    """The body to start from, and what it was made from (for provenance)."""
    from warmstart.tokenize import make_tokenizer

    if cfg.body == "tfidf":
        return TfidfBody.from_texts(
            texts, tokenizer=make_tokenizer(cfg.tokenizer, lowercase=cfg.lowercase),
            ngrams=cfg.ngrams, min_df=cfg.min_count, max_terms=cfg.max_vocab), None
    if cfg.init:
        meta_kind = _kind_of(cfg.init)
        if meta_kind == "vectors":
            from warmstart.artifact import read_meta
            from warmstart.vectors.keyed import KeyedVectors

            vectors = KeyedVectors.load(cfg.init)
            made_with = read_meta(cfg.init).get("config", {})
            # Vectors trained on pre-segmented, tagged text read raw text with jieba.
            name = {"tagged": "jieba"}.get(made_with.get("tokenizer", "words"),
                                           made_with.get("tokenizer", "words"))
            tokenizer = make_tokenizer(name, lowercase=bool(made_with.get("lowercase", False)))
            # The vectors' own words join the training words: a word no label ever came
            # with still carries what pretraining learned about it.
            # A probe freezes everything: its features are the vectors' averages themselves.
            static = cfg.channels in ("static", "both") and cfg.method != "probe"
            trained = cfg.channels in ("trained", "both") or cfg.method == "probe"
            body = WordVectorBody.from_texts(
                texts, tokenizer=tokenizer, min_count=cfg.min_count, dim=vectors.dim,
                ngrams=1 if cfg.method == "probe" else cfg.ngrams, buckets=cfg.buckets,
                hidden=cfg.hidden, extra_words=vectors.words[:cfg.max_vocab],
                static_dim=vectors.dim if static else 0,
            )
            if not cfg.random_init:
                body.init_from(vectors, trained=trained)
            body.fit_static(body.encode(texts))
            if cfg.freeze or cfg.method == "probe":
                body.word_emb.requires_grad_(False)
            return body, cfg.init
        from warmstart.models.io import load_pretrained

        pretrained = load_pretrained(cfg.init, kind="encoder")
        encoder = pretrained.model
        if cfg.random_init:
            from warmstart.models.transformer import Encoder

            encoder = Encoder(encoder.config)
        if pretrained.tokenizer is None:
            raise WarmstartError(f"--init {cfg.init}: the encoder has no tokenizer")
        return EncoderBody(encoder, pretrained.tokenizer, pooling=cfg.pooling,  # type: ignore[arg-type]
                           max_len=cfg.max_len, truncation=cfg.truncation,
                           normalize=_normalize(cfg)), cfg.init
    tokenizer = make_tokenizer(cfg.tokenizer, lowercase=cfg.lowercase)
    return WordVectorBody.from_texts(texts, tokenizer=tokenizer, min_count=cfg.min_count,
                                     dim=cfg.dim, ngrams=cfg.ngrams, buckets=cfg.buckets,
                                     hidden=cfg.hidden), None


def _normalize(cfg: FinetuneConfig) -> bool:
    """--normalize resolved: auto follows a sentence-transformers model's own pipeline for
    frozen features (a probe or prototype), where the embedding is the model's output."""
    if cfg.normalize != "auto":
        return cfg.normalize == "yes"
    from warmstart.models.hf import normalizes_embeddings

    return cfg.method in ("probe", "prototype") and normalizes_embeddings(cfg.init)


def _kind_of(path: str) -> str:
    from warmstart.artifact import META_FILE, read_meta

    if (Path(path) / META_FILE).exists():
        return str(read_meta(path)["kind"])
    return "encoder"  # a Hugging Face folder; load_pretrained says if it is not one


def finetune(
    train_data: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    tasks: dict[str, Any] | None = None,
    progress: bool = True,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
    **options: Any,
) -> FinetuneResult:
    """Train a classifier on ``train_data`` (a file or a :class:`LabeledDataset`).

    ``options`` are the fields of :class:`DataConfig`, :class:`FinetuneConfig` and
    :class:`~warmstart.train.loop.TrainConfig`, the names of the CLI's options. ``tasks``
    adds more labeled datasets by task name (multi-task; each split into train/dev like the
    first). Re-running with the same settings continues an interrupted run.
    ``on_validate(n, record)`` sees each dev evaluation of end-to-end training (of the last
    self-training round): what a tuner prunes by.
    """
    data_values, ft_values, train_values, few_values = split_settings(SETTINGS, options,
                                                                      where="options")
    data, cfg, few = DataConfig(**data_values), FinetuneConfig(**ft_values), FewLabelsConfig(**few_values)
    seed = int(train_values.get("seed", 0))
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_replaceable(out_dir)

    named = {"label": train_data, **(tasks or {})}
    if few.any and len(named) > 1:
        raise WarmstartError("--contrastive, --augment, --self-train and --consistency train "
                             "one task; drop --task or these options")
    if few.contrastive and cfg.body == "tfidf":
        raise WarmstartError("--contrastive tunes a body on pairs, but --body tfidf has nothing "
                             "to tune; drop one of them")
    if few.consistency and cfg.method != "finetune":
        raise WarmstartError(f"--consistency trains end to end; it needs --method finetune, "
                             f"not {cfg.method}")
    # --dev is the first task's; other tasks hold out --dev-fraction of their own data.
    read = {name: _read(src, data) for name, src in named.items()}
    for ds in read.values():
        if not ds.multi_label and len(ds.labels) < 2:
            raise WarmstartError(
                f"{ds.source}: every example has the label {ds.labels[0]!r}; a classifier "
                "needs at least 2 classes (check --label-field)")
        if ds.multi_label and (few.contrastive or few.self_train or few.consistency):
            raise WarmstartError(f"{ds.source}: multi-label data; --contrastive, --self-train "
                                 "and --consistency need one label per text")
    task_list = [Task(name, ds.labels, ds.multi_label) for name, ds in read.items()]
    splits = {name: _split(ds, data if name == "label" else dataclasses.replace(data, dev=""),
                           seed)
              for name, ds in read.items()}

    unlabeled = _read_unlabeled(few, seed)
    teacher = _load_teacher(few.teacher) if few.teacher else None
    augmenter = _augmenter(few) if few.augment or few.consistency else None
    labeled, dev_set = splits["label"]
    if few.augment and augmenter is not None:
        labeled = _with_copies(labeled, augmenter, few.augment, seed)
    unlabeled_aug = (augmenter.augment(unlabeled, np.random.default_rng([seed, 3]))
                     if few.consistency and augmenter is not None else [])
    extra = {"unlabeled": unlabeled, "unlabeled_aug": unlabeled_aug}

    # The body (and SetFit's pair phase, on the labels only) once; every self-training round
    # starts again from it, with the labels and the previous round's pseudo-labels (and with
    # --pseudo-pairs, a pair phase on both first).
    body, parent, tcfg = _start(cfg, few, splits, train_values, extra, seed, progress,
                                out_dir / "checkpoint-contrastive"
                                if out_dir is not None and few.contrastive else None)
    start = ({k: v.detach().clone() for k, v in body.state_dict().items()}
             if few.self_train else None)
    pseudo: LabeledDataset | None = None
    rounds: list[dict[str, Any]] = []
    if teacher is not None:  # the first round's pseudo-labels are the teacher's
        teacher.precision = tcfg.precision
        pseudo = _pseudo_labels(teacher, unlabeled, few, labeled, 0)
        rounds.append(_round_record(pseudo, 0, few, len(unlabeled), progress))
    for r in range(1 if few.teacher else 0, 1 + few.self_train):
        if start is not None:
            body.load_state_dict(start)
        train_set = labeled if pseudo is None else _concat(labeled, pseudo)
        splits["label"] = (train_set, dev_set)
        last = r == few.self_train
        # The checkpoints of earlier phases sit beside the run's own, in checkpoint-<phase>/.
        work = out_dir if last or out_dir is None else out_dir / f"checkpoint-round-{r + 1}"
        if pseudo is not None and few.pseudo_pairs:
            _pair_phase(body, few, few.pseudo_pairs, train_set, dev_set, seed + r, tcfg, progress,
                        out_dir / f"checkpoint-contrastive-round-{r + 1}"
                        if out_dir is not None else None)
        classifier, result = _transfer(body, cfg, few, splits, task_list, tcfg, train_values,
                                       extra, work, progress, on_validate if last else None)
        if not last:
            pseudo = _pseudo_labels(classifier, unlabeled, few, train_set, r)
            rounds.append(_round_record(pseudo, r, few, len(unlabeled), progress))
    for t in task_list:  # multi-label: the decision threshold that does best on dev
        if t.multi_label:
            from warmstart.evaluate.classification import tune_thresholds

            dev_set = splits[t.name][1]
            probs = classifier.predict_proba(dev_set.texts, task=t.name)
            classifier.thresholds[t.name] = float(tune_thresholds(dev_set.y, probs))

    dev_reports = {t.name: evaluate(classifier, splits[t.name][1], task=t.name)
                   for t in task_list}
    if out_dir is not None:
        settings = {"data": dataclasses.asdict(data), "finetune": dataclasses.asdict(cfg),
                    "train": dataclasses.asdict(tcfg), "few_labels": dataclasses.asdict(few)}
        provenance: dict[str, Any] = {
            name: {"source": tr.source, "hash": tr.content_hash(), "n": len(tr)}
            for name, (tr, _) in splits.items()}
        if rounds:
            provenance["self_training"] = rounds
        _save(out_dir, classifier, settings, result, dev_reports, parent=parent, data=provenance)
    return FinetuneResult(classifier=classifier, training=result, dev=dev_reports, out=out_dir)


def _start(
    cfg: FinetuneConfig, few: FewLabelsConfig,
    splits: dict[str, tuple[LabeledDataset, LabeledDataset]], train_values: dict[str, Any],
    extra: dict[str, list[str]], seed: int, progress: bool, pairs_out: Path | None,
) -> tuple[Body, str | None, TrainConfig]:
    """The body to transfer from, after SetFit's pair phase if asked, and the loop's settings."""
    texts = [t for tr, _ in splits.values() for t in tr.texts]
    if few.consistency or few.self_train:  # words only unlabeled text has get embeddings too
        texts += extra["unlabeled"]
    torch.manual_seed(seed)
    body, parent = make_body(cfg, texts)
    kind = "encoder" if isinstance(body, EncoderBody) else "words"
    tcfg = TrainConfig(**{**_DEFAULTS[kind], **train_values})
    if few.contrastive:
        _pair_phase(body, few, few.contrastive, *splits["label"], seed, tcfg, progress, pairs_out)
    return body, parent, tcfg


def _pair_phase(body: Body, few: FewLabelsConfig, pairs: int, train_set: LabeledDataset,
                dev_set: LabeledDataset, seed: int, tcfg: TrainConfig, progress: bool,
                out: Path | None) -> None:
    """SetFit's pair phase on ``train_set``: ``body`` is tuned in place (and left on the CPU)."""
    from warmstart.transfer.fewshot import contrastive_tune

    contrastive_tune(body, body.encode(train_set.texts), train_set.y, pairs=pairs,
                     batch_pairs=few.contrastive_batch, lr=few.contrastive_lr,
                     epochs=few.contrastive_epochs, seed=seed,
                     dev_ids=body.encode(dev_set.texts), dev_y=dev_set.y, out=out,
                     progress=progress, threads=tcfg.threads, device=tcfg.device,
                     precision=tcfg.precision)
    body.cpu()


def _transfer(
    body: Body, cfg: FinetuneConfig, few: FewLabelsConfig,
    splits: dict[str, tuple[LabeledDataset, LabeledDataset]], task_list: list[Task],
    tcfg: TrainConfig, train_values: dict[str, Any], extra: dict[str, list[str]],
    out: Path | None, progress: bool,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[Classifier, TrainResult | None]:
    """A classifier on ``body`` by ``cfg.method``: probe, prototype or fine-tuning."""
    if cfg.method == "probe":
        return _probe(body, task_list, splits, cfg, tcfg.precision), None
    if cfg.method == "prototype":
        return _prototype(body, task_list, splits, tcfg.precision), None
    return _train(body, task_list, splits, cfg, tcfg, out, progress, chosen=set(train_values),
                  few=few, extra=extra, on_validate=on_validate)


def _read_unlabeled(few: FewLabelsConfig, seed: int) -> list[str]:
    """The --unlabeled texts (a seeded sample of --unlabeled-max of them), or none."""
    if not few.unlabeled:
        return []
    from warmstart.corpus import Corpus

    texts = [t for t in Corpus(few.unlabeled, text_field=few.unlabeled_field) if t.strip()]
    if not texts:
        raise WarmstartError(f"--unlabeled {few.unlabeled}: no text found")
    if few.unlabeled_max and len(texts) > few.unlabeled_max:
        keep = np.sort(np.random.default_rng([seed, 4]).choice(len(texts), few.unlabeled_max,
                                                                replace=False))
        texts = [texts[i] for i in keep.tolist()]
    return texts


def _augmenter(few: FewLabelsConfig) -> Any:
    from warmstart.transfer.augment import AugmentConfig, make_augmenter

    # Without vectors there are no synonyms: EDA's swaps and deletions only.
    synonyms = 0.1 if few.augment_vectors else 0.0
    return make_augmenter(AugmentConfig(vectors=few.augment_vectors, mlm=few.augment_mlm,
                                        sr=synonyms, ri=synonyms))


def _with_copies(ds: LabeledDataset, augmenter: Any, copies: int, seed: int) -> LabeledDataset:
    """``ds`` followed by ``copies`` augmented copies of each example, with its labels."""
    from warmstart.transfer.augment import augment_copies

    made = augment_copies(augmenter, ds.texts, copies, np.random.default_rng([seed, 5]))
    texts = ds.texts + [c for i in range(copies) for c in (m[i] for m in made)]
    return dataclasses.replace(ds, texts=texts, y=np.concatenate([ds.y] * (1 + copies)),
                               line_numbers=None, doc_files=None)


def _concat(a: LabeledDataset, b: LabeledDataset) -> LabeledDataset:
    return dataclasses.replace(a, texts=a.texts + b.texts, y=np.concatenate([a.y, b.y]),
                               source=f"{a.source} + {b.source}", line_numbers=None,
                               doc_files=None)


def _load_teacher(path: str) -> Classifier:
    from warmstart.artifact import META_FILE

    if not (Path(path) / META_FILE).exists():
        raise WarmstartError(f"--teacher {path}: not a classifier folder (no {META_FILE}); "
                             "give a folder `warmstart finetune --out` wrote")
    teacher = Classifier.load(path)
    if teacher.task().multi_label:
        raise WarmstartError(f"--teacher {path}: a multi-label classifier; self-training "
                             "needs one label per text")
    return teacher


def _round_record(pseudo: LabeledDataset, round_: int, few: FewLabelsConfig, pool: int,
                  progress: bool) -> dict[str, Any]:
    """What a self-training round's pseudo-labels were (for provenance), told on stderr."""
    by = "the teacher" if few.teacher and round_ == 0 else "the model"
    if progress:
        print(f"self-training round {round_ + 1}/{few.self_train}: {len(pseudo):,} "
              f"pseudo-labels by {by} of {pool:,} unlabeled texts ({pseudo.class_counts()})",
              file=sys.stderr)
    return {"round": round_ + 1, "by": by, "pseudo_labels": len(pseudo),
            "per_class": pseudo.class_counts()}


def _pseudo_labels(classifier: Classifier, unlabeled: list[str], few: FewLabelsConfig,
                   like: LabeledDataset, round_: int) -> LabeledDataset:
    """The unlabeled texts the classifier is confident about, with its predictions."""
    from warmstart.transfer.semisup import select_pseudo_labels

    probs = classifier.predict_proba(unlabeled)
    if classifier.labels != list(like.labels):  # a teacher's labels, in ours
        if sorted(classifier.labels) != sorted(like.labels):
            raise WarmstartError(f"--teacher {few.teacher}: its labels {classifier.labels} "
                                 f"are not those of the training data, {list(like.labels)}")
        probs = probs[:, [classifier.labels.index(label) for label in like.labels]]
    idx, y = select_pseudo_labels(probs, few.pseudo_threshold, balance=few.pseudo_balance,
                                  max_per_class=few.pseudo_per_class)
    if not len(idx):
        confident = np.bincount(probs.argmax(1)[probs.max(1) >= few.pseudo_threshold],
                                minlength=probs.shape[1])
        warnings.warn(f"self-training round {round_ + 1}: no pseudo-labels; predictions above "
                      f"--pseudo-threshold {few.pseudo_threshold} per class: "
                      f"{dict(zip(like.labels, confident.tolist(), strict=True))} (with "
                      "--pseudo-balance every class needs some); lower the threshold",
                      stacklevel=2)
    return LabeledDataset(texts=[unlabeled[i] for i in idx.tolist()], y=y.astype(np.int64),
                          labels=list(like.labels), multi_label=False,
                          source=f"{few.unlabeled} (pseudo-labels of round {round_ + 1})")


def _class_weights(task: Task, y: np.ndarray) -> torch.Tensor:
    if task.multi_label:
        pos = y.sum(0).astype(np.float64)
        return torch.tensor((len(y) - pos) / np.maximum(pos, 1.0), dtype=torch.float32)
    counts = np.bincount(y, minlength=len(task.labels)).astype(np.float64)
    return torch.tensor(len(y) / (len(counts) * np.maximum(counts, 1.0)), dtype=torch.float32)


def _train(
    body: Body, task_list: list[Task],
    splits: dict[str, tuple[LabeledDataset, LabeledDataset]], cfg: FinetuneConfig,
    tcfg: TrainConfig, out: Path | None, progress: bool, *, chosen: set[str],
    few: FewLabelsConfig | None = None, extra: dict[str, list[str]] | None = None,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[Classifier, TrainResult]:
    reg = Regularisation(dropout=cfg.dropout, l1=cfg.l1, l2=cfg.l2, l2sp=cfg.l2sp,
                         layer_lr_decay=cfg.layer_lr_decay, unfreeze=cfg.unfreeze,
                         freeze_body=cfg.freeze and isinstance(body, EncoderBody))
    weights = ({t.name: _class_weights(t, splits[t.name][0].y) for t in task_list}
               if cfg.class_weights == "balanced" else None)
    model = TextClassifier(body, task_list, reg=reg, class_weights=weights)
    if cfg.head_init == "probe":  # LP-FT: a fitted head first, so fine-tuning starts aligned
        _fit_heads(model, splits, cfg, tcfg.precision)
    n_labels = max(len(t.labels) for t in task_list)
    train_enc = [encode(body, i, tr.texts, tr.y) for i, (tr, _) in enumerate(splits.values())]
    dev_enc = [encode(body, i, dv.texts, dv.y) for i, (_, dv) in enumerate(splits.values())]
    batches = ClassificationBatches(body, train_enc, dev_enc, batch_size=tcfg.batch_size,
                                    seed=tcfg.seed, temperature=cfg.task_temperature,
                                    n_labels=n_labels)
    per_epoch = batches.steps_per_epoch
    if not chosen & {"epochs", "max_steps", "max_tokens", "time_budget"}:
        # Few labels make short epochs: train for enough steps to learn (the best epoch on
        # dev is kept), between the body's default epochs and 20.
        epochs = min(20.0, max(tcfg.epochs, math.ceil(_MIN_STEPS / per_epoch)))
        tcfg = dataclasses.replace(tcfg, epochs=float(epochs))
    if "eval_every" not in chosen:
        tcfg = dataclasses.replace(tcfg, eval_every=per_epoch, checkpoint_every=per_epoch,
                                   log_every=max(1, min(tcfg.log_every, per_epoch // 4 or 1)))
    seconds = parse_duration(tcfg.time_budget) if tcfg.time_budget else 0.0
    max_steps = tcfg.max_steps or math.ceil((tcfg.epochs or 1.0) * per_epoch)
    budget = Budget(max_steps=max_steps, max_tokens=tcfg.max_tokens, seconds=seconds)
    # Several tasks: the mean of their dev accuracies picks the best weights. Dev texts that
    # are all training texts (--dev-fraction 0, and self-training rounds after it) select
    # nothing: the first epoch that fits them would win, so the last weights are kept.
    accuracies = tuple(f"valid_{t.name}_accuracy" for t in task_list)
    dev_is_training = all(set(dv.texts) <= set(tr.texts) for tr, dv in splits.values())
    monitor = None if dev_is_training else Monitor(
        key=(accuracies[0] if len(accuracies) == 1 else accuracies)
        if cfg.monitor == "accuracy" else "valid_loss",
        mode="max" if cfg.monitor == "accuracy" else "min", patience=cfg.patience)
    fingerprint = {
        "finetune": dataclasses.asdict(cfg),
        "train": {k: v for k, v in dataclasses.asdict(tcfg).items()
                  if k not in ("threads", "device", "eval_every", "checkpoint_every", "log_every",
                               "max_steps", "epochs", "time_budget", "max_tokens")},
        "data": {name: tr.content_hash() for name, (tr, _) in splits.items()},
        "body": hashlib.sha256(repr(body.describe()).encode()).hexdigest()[:16],
    }
    if few is not None and few.consistency and extra:
        from warmstart.transfer.semisup import ConsistencyBatches, ConsistencyClassifier

        # UDA: each step adds --consistency-ratio unlabeled texts per labeled one, each with
        # its augmentation; the loop's batch is all of those rows.
        mixed = ConsistencyBatches(batches, body.encode(extra["unlabeled"]),
                                   body.encode(extra["unlabeled_aug"]),
                                   ratio=few.consistency_ratio, seed=tcfg.seed)
        trained = ConsistencyClassifier(model, weight=few.consistency,
                                        confidence=few.consistency_confidence,
                                        temperature=few.sharpen, tsa=few.tsa)
        loop_cfg = dataclasses.replace(tcfg, batch_size=mixed.rows_per_step)
        fingerprint["few_labels"] = dataclasses.asdict(few)
        result = train(trained, mixed, loop_cfg, budget=budget, out=out,
                       fingerprint=fingerprint, progress=progress, monitor=monitor,
                       on_validate=on_validate)
    else:
        result = train(model, batches, tcfg, budget=budget, out=out, fingerprint=fingerprint,
                       progress=progress, monitor=monitor, on_validate=on_validate)
    model.tsa = 1.0
    model.cpu().eval()
    return Classifier(model, precision=tcfg.precision), result


@torch.inference_mode()
def features_of(
    body: Body, texts: list[str], *, batch_size: int = 64, sparse: bool = False,
    precision: str = "auto",
) -> Any:
    """(N, C) features of ``texts`` from a frozen body, in length-sorted batches; with
    ``sparse``, a TF-IDF body's come as a scipy sparse matrix (too wide to hold dense).
    An encoder runs in bf16 where ``precision`` says so (as :class:`Classifier` predicts)."""
    if sparse and isinstance(body, TfidfBody):
        return body.sparse_features(texts)
    body.eval()
    autocast = body_autocast(body, torch.device("cpu"), precision)
    out = np.zeros((len(texts), body.dim), dtype=np.float32)
    for rows, batch in sorted_batches(body, body.encode(texts), batch_size):
        with autocast:
            out[rows] = body(batch).float().numpy()
    return out


def _logistic_regression(
    z: np.ndarray, y: np.ndarray, cfg: FinetuneConfig, *, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of a penalised logistic regression; C by 5-fold CV unless given."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    # scikit-learn >= 1.8 sets the penalty by l1_ratio: 0 is L2, 1 is L1, between: elastic net.
    l1_ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": cfg.l1_ratio}[cfg.penalty]
    solver = {"l2": "lbfgs", "l1": "liblinear", "elasticnet": "saga"}[cfg.penalty]
    if cfg.C:
        lr = LogisticRegression(C=cfg.C, l1_ratio=l1_ratio, solver=solver, max_iter=3000)
        lr.fit(z, y)
        return lr.coef_, lr.intercept_
    folds = int(min(5, np.bincount(y).min()))
    if folds < 2:
        raise WarmstartError(f"task {task}: a class has a single example, too few to choose C "
                             "by cross-validation; give --C")
    cv = LogisticRegressionCV(Cs=10, l1_ratios=(l1_ratio,), cv=folds, solver=solver,
                              scoring="accuracy", max_iter=3000, use_legacy_attributes=False)
    cv.fit(z, y)
    return cv.coef_, cv.intercept_


def _probe(
    body: Body, task_list: list[Task],
    splits: dict[str, tuple[LabeledDataset, LabeledDataset]], cfg: FinetuneConfig,
    precision: str,
) -> Classifier:
    """Logistic regression on frozen features, folded into a linear head of the classifier."""
    model = TextClassifier(body, task_list, reg=Regularisation(dropout=0.0))
    _fit_heads(model, splits, cfg, precision)
    return Classifier(model.eval(), precision=precision)


def _prototype(
    body: Body, task_list: list[Task],
    splits: dict[str, tuple[LabeledDataset, LabeledDataset]], precision: str,
) -> Classifier:
    """Nearest class centroid of the frozen features, as a linear head (see fewshot.py)."""
    from warmstart.transfer.fewshot import prototype_head

    model = TextClassifier(body, task_list, reg=Regularisation(dropout=0.0))
    for t in task_list:
        tr = splits[t.name][0]
        x = features_of(body, tr.texts, precision=precision)
        model.set_head(t.name, *prototype_head(x, tr.y, len(t.labels)))
    return Classifier(model.eval(), precision=precision)


def _fit_heads(model: TextClassifier, splits: dict[str, tuple[LabeledDataset, LabeledDataset]],
               cfg: FinetuneConfig, precision: str) -> None:
    """Set each task's head to a logistic regression fitted on the body's current features."""
    body = model.body
    for t in model.tasks:
        tr = splits[t.name][0]
        x = features_of(body, tr.texts, sparse=True, precision=precision)
        if cfg.standardize and isinstance(x, np.ndarray):  # TF-IDF rows are already scaled
            mu, sigma = x.mean(0), x.std(0) + 1e-6
        else:
            mu, sigma = np.zeros(x.shape[1], x.dtype), np.ones(x.shape[1], x.dtype)
        z = (x - mu) / sigma if isinstance(x, np.ndarray) else x
        k = len(t.labels)
        if t.multi_label:  # one regression per label
            fits = [_logistic_regression(z, tr.y[:, j], cfg, task=t.name) for j in range(k)]
            coef = np.concatenate([c for c, _ in fits])
            bias = np.concatenate([b for _, b in fits])
        else:
            coef, bias = _logistic_regression(z, tr.y, cfg, task=t.name)
            if k == 2:  # one score for the second class; the first class's logit is 0
                coef = np.concatenate([np.zeros_like(coef), coef])
                bias = np.concatenate([np.zeros_like(bias), bias])
        # Fold the standardisation in: w.(x - mu)/sigma + b = (w/sigma).x + (b - w.mu/sigma).
        w = coef / sigma
        b = bias - (coef * (mu / sigma)).sum(1)
        model.set_head(t.name, w, b)
    body.train()


def evaluate(classifier: Classifier, dataset: LabeledDataset, *, task: str | None = None) -> dict[str, Any]:
    """The classification report of ``classifier`` on ``dataset`` (labels in its label map)."""
    from warmstart.evaluate.classification import classification_report, multilabel_report

    t = classifier.task(task)
    dataset = dataset.with_labels(t.labels)
    probs = classifier.predict_proba(dataset.texts, task=t.name)
    if t.multi_label:
        cut = classifier.thresholds.get(t.name, 0.5)
        return multilabel_report(dataset.y, (probs >= cut).astype(np.uint8), t.labels)
    return classification_report(dataset.y, probs.argmax(1), t.labels)


def _save(
    out: Path, classifier: Classifier, settings: dict[str, Any], result: TrainResult | None,
    dev: dict[str, dict[str, Any]], *, parent: str | None, data: dict[str, Any],
) -> None:
    import json

    from warmstart.evaluate.classification import write_report
    from warmstart.train.plots import plot_losses

    with building(out) as folder:
        classifier.save_into(folder, config=settings, parent=parent, data=data)
        if result is not None:
            lines = [json.dumps(r) for r in result.history]
            (folder / "metrics.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
            plot_losses(result.history, folder / "plots" / "loss.png", title="fine-tuning")
        for name, report in dev.items():
            write_report(report, folder / "dev" / name if len(dev) > 1 else folder / "dev")
