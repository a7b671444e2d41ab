"""The settings of ``warmstart finetune``: what to read, how to transfer, and few-label options.

Every field is a CLI option of the same name (``dev_fraction`` -> ``--dev-fraction``) and a
keyword of :func:`warmstart.transfer.finetune.finetune`; ``SETTINGS`` is the tuple the CLI,
``--config`` files and ``warmstart tune`` read them from.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config import opt, option_name
from warmstart.errors import WarmstartError
from warmstart.labeled import ReadConfig
from warmstart.train.loop import TrainConfig

METHODS = ("finetune", "probe", "prototype")
BODIES = ("auto", "tfidf")
PENALTIES = ("l2", "l1", "elasticnet")
CHANNELS = ("trained", "static", "both")
#: --auto-select: how --recipe auto chooses (see warmstart.transfer.auto).
SELECTIONS = ("ensembles", "best", "fixed")


@dataclass
class DataConfig(ReadConfig):
    """Where the labeled data is and how to read it."""

    dev: str = opt("", "dev file (default: --dev-fraction of the training data, stratified)")
    dev_fraction: float = opt(0.1, "share of the training data held out as dev when no --dev "
                                   "(0: train on every example; dev scores are then of the "
                                   "training data, for few labels)", at_least=0, below=1)


@dataclass
class FinetuneConfig:
    """How to transfer: where to start from, the method, the model and its regularisers."""

    init: str = opt("", "encoder, Hugging Face folder or vectors artifact to start from "
                        "(none: a word-vector classifier from random embeddings); --recipe "
                        "takes several (repeat the option)", multiple=True)
    method: str = opt("finetune", "finetune (train end to end), probe (frozen features + "
                                  "logistic regression) or prototype (nearest class centroid)")
    body: str = opt("auto", "what reads the texts: auto (--init's encoder or vectors; without "
                            "--init a word-vector model) or tfidf (TF-IDF of words and word "
                            "n-grams up to --ngrams, fitted on the texts; nothing to pretrain: "
                            "with --method probe, the classic TF-IDF + logistic regression)")
    random_init: bool = opt(False, "the architecture of --init with fresh random weights "
                                   "(the baseline pretraining must beat)")
    pooling: str = opt("mean", "encoder pooling: mean, cls or pooler (BERT's; exportable); "
                               "word vectors: mean or mean+max (their elementwise max beside)")
    normalize: str = opt("auto", "encoder: scale each pooled vector to length 1: yes, no or "
                                 "auto (yes for a probe or prototype on a sentence-transformers "
                                 "model that normalises its embeddings, as all-MiniLM-L6-v2)")
    max_len: int = opt(256, "tokens per text (longer texts are cut)", at_least=8)
    truncation: str = opt("head", "encoder: what a long text keeps: head, tail or head+tail "
                          "(a quarter from the start, the rest from the end)")
    dropout: float = opt(0.1, "dropout before the head", at_least=0, below=1)
    l1: float = opt(0.0, "L1 penalty on the trained weights", at_least=0)
    l2: float = opt(0.0, "L2 penalty on the trained weights (with --l1: the elastic net)", at_least=0)
    l2sp: float = opt(0.0, "L2-SP: penalty on the distance from the pretrained weights", at_least=0)
    layer_lr_decay: float = opt(1.0, "each encoder block below the top learns this much slower", above=0)
    unfreeze: float = opt(0.0, "gradual unfreezing over this share of training (0: off)", at_least=0, below=1)
    freeze: bool = opt(False, "keep the pretrained body (or word embeddings) fixed")
    class_weights: str = opt("none", "none or balanced (weigh classes by inverse frequency)")
    patience: int = opt(0, "stop after this many evaluations without a better dev score", at_least=0)
    monitor: str = opt("accuracy", "dev score that picks the best epoch: accuracy or loss")
    task_temperature: float = opt(1.0, "multi-task sampling: 1 proportional, larger flatter", above=0)
    head_init: str = opt("random", "finetune: the heads start random, or as a probe's logistic "
                         "regression on the starting features (LP-FT, Kumar et al. 2022)")
    penalty: str = opt("l2", "probe: l2, l1 or elasticnet")
    C: float = opt(0.0, "probe: inverse regularisation strength (0: chosen by 5-fold CV)", at_least=0)
    l1_ratio: float = opt(0.5, "probe: share of L1 in the elastic net", at_least=0, at_most=1)
    standardize: bool = opt(True, "probe: standardise the features with the training texts' "
                                  "mean and spread (off: raw features, as SetFit; steadier "
                                  "with a handful of labels)")
    dim: int = opt(100, "word-vector model: embedding size without --init", at_least=1)
    ngrams: int = opt(2, "word-vector model and TF-IDF: word n-grams up to this length "
                         "(1: words only)", at_least=1)
    buckets: int = opt(200_000, "word-vector model: hash buckets for the n-grams", at_least=1)
    hidden: int = opt(0, "word-vector model: a hidden layer of this size (0: linear)", at_least=0)
    min_count: int = opt(1, "word-vector model: words seen fewer times are dropped; TF-IDF: "
                            "terms in fewer texts are dropped", at_least=1)
    max_vocab: int = opt(200_000, "word-vector model: most words taken from --init's vectors; "
                                  "TF-IDF: most terms kept (the most frequent)", at_least=1)
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
                              "example and epoch (0: off; SetFit's default is 20)", at_least=0)
    contrastive_lr: float = opt(2e-5, "contrastive phase: learning rate", above=0)
    contrastive_epochs: float = opt(1.0, "contrastive phase: epochs of pairs", above=0)
    contrastive_batch: int = opt(16, "contrastive phase: pairs per step", at_least=2)
    augment: int = opt(0, "augmented copies of each labeled example added to the training data "
                          "(EDA; contextual with --augment-mlm)", at_least=0)
    augment_vectors: str = opt("", "word vectors whose neighbours are the augmenter's synonyms "
                                   "(without: EDA swaps and deletions only)")
    augment_mlm: str = opt("", "encoder with an MLM head: contextual replacement, mixed with EDA")
    unlabeled: str = opt("", "unlabeled text (any corpus format) for --self-train or "
                             "--consistency")
    unlabeled_field: str = opt("text", "--unlabeled: the text column or JSON key")
    unlabeled_max: int = opt(0, "use at most this many unlabeled texts, a seeded sample (0: all)", at_least=0)
    teacher: str = opt("", "self-training: a trained classifier (folder) whose confident "
                           "predictions on --unlabeled are the first round's pseudo-labels, "
                           "instead of this model's own; best of another kind than the "
                           "student (e.g. a probe on pretrained vectors teaching --body tfidf)")
    self_train: int = opt(0, "self-training rounds: pseudo-label --unlabeled with the classifier, "
                             "retrain on the labels and the pseudo-labels (0: off)", at_least=0)
    pseudo_threshold: float = opt(0.9, "self-training: lowest confidence of a pseudo-label", at_least=0, at_most=1)
    pseudo_balance: bool = opt(True, "self-training: keep as many pseudo-labels of each class")
    pseudo_per_class: int = opt(0, "self-training: keep at most this many pseudo-labels of each "
                                   "class, the most confident (0: all above the threshold)", at_least=0)
    pseudo_pairs: int = opt(0, "self-training with --contrastive: each round after the first "
                               "tunes the body on pairs again, of the labels and the "
                               "pseudo-labels, this many pairs per example (0: the pair phase "
                               "sees the labels only)", at_least=0)
    consistency: float = opt(0.0, "UDA: weight of the consistency loss between --unlabeled "
                                  "texts and their augmentations (0: off)", at_least=0)
    consistency_ratio: int = opt(3, "UDA: unlabeled texts per labeled text in a batch", at_least=1)
    consistency_confidence: float = opt(0.8, "UDA: unlabeled texts predicted with less "
                                             "confidence are left out of the loss", at_least=0, at_most=1)
    sharpen: float = opt(0.4, "UDA: temperature of the targets (below 1 sharpens; 1: none)", above=0)
    tsa: str = opt("none", "UDA: training-signal annealing: none, linear, log or exp")

    def __post_init__(self) -> None:
        for name in ("contrastive", "augment", "unlabeled_max", "self_train",
                     "consistency_ratio", "contrastive_batch", "pseudo_per_class",
                     "pseudo_pairs"):
            if getattr(self, name) < 0:
                raise WarmstartError(f"{option_name(name)} {getattr(self, name)}: "
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


RECIPES_HELP = ("tfidf, vectors-probe, vectors-channel, frozen-probe, pairs-probe, "
                "pairs-prototype, pairs-finetune, self-train, self-train-views, "
                "self-train-static, self-train-finetune, self-train-finetune-2, "
                "self-train-finetune-views, pseudo-pairs")


@dataclass
class RecipeConfig:
    """A named recipe, or the one cross-validation on the labels chooses (``auto``)."""

    recipe: str = opt("", "auto (the recipe that cross-validation on the labels alone chooses, "
                          "among every one that applies to --init and --unlabeled, and their "
                          "ensembles; --time-budget bounds the whole run, 15m when not given) or "
                          "a recipe's name: "
                          f"{RECIPES_HELP} (default: none, --method decides)")
    auto_select: str = opt("ensembles", "--recipe auto: how to choose: ensembles (the best of a "
                                        "few ensembles and self-training recipes), best (the best "
                                        "candidate) or fixed (no choice)")
    cv_folds: int = opt(0, "--recipe auto: cross-validation folds (0: 5, fewer when a class has "
                           "fewer labels)", at_least=0)
    cv_repeats: int = opt(3, "--recipe auto: most repeats of the cross-validation (each with "
                             "other folds), as far as --time-budget allows", at_least=1)
    in_batch: int = opt(0, "--recipe: the pair phase takes every two texts of class-balanced "
                           "batches of this many labeled texts as a pair (SetFit's loss in about an "
                           "eighth of its encoder passes; 0: SetFit's 20 pairs per example, "
                           "which auto swaps for 32 where they do not fit --time-budget)",
                        at_least=0)

    def __post_init__(self) -> None:
        if self.auto_select not in SELECTIONS:
            raise WarmstartError(f"--auto-select {self.auto_select}: use ensembles, best or fixed")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise WarmstartError(f"--cv-folds {self.cv_folds}: at least 2 (0: automatic)")
        if self.cv_repeats < 1:
            raise WarmstartError(f"--cv-repeats {self.cv_repeats}: at least 1")
        if self.in_batch == 1:
            raise WarmstartError(f"--in-batch {self.in_batch}: at least 2 texts a batch "
                                 "(0: SetFit's pairs)")


SETTINGS = (DataConfig, FinetuneConfig, TrainConfig, FewLabelsConfig, RecipeConfig)
# Defaults of the loop that differ for fine-tuning, by body: (lr, epochs, batch size).
BODY_DEFAULTS = {"encoder": {"lr": 5e-5, "epochs": 3.0, "batch_size": 32, "warmup": 0.1},
                 "words": {"lr": 5e-3, "epochs": 5.0, "batch_size": 32, "warmup": 0.0}}
MIN_STEPS = 200  # default budgets give at least this many steps (up to 20 epochs)
