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
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.artifact import METRICS_FILE, append_metrics, building, check_out
from warmstart.config import option_name, split_settings
from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.train.budget import parse_duration
from warmstart.train.loop import TrainConfig, TrainResult
from warmstart.transfer.bodies import Body, EncoderBody
from warmstart.transfer.classifier import Classifier, evaluate
from warmstart.transfer.heads import Splits, probe, prototype
from warmstart.transfer.model import Task
from warmstart.transfer.semisup import load_teacher, read_unlabeled, self_train
from warmstart.transfer.settings import (
    BODY_DEFAULTS,
    SETTINGS,
    DataConfig,
    FewLabelsConfig,
    FinetuneConfig,
    RecipeConfig,
)
from warmstart.transfer.starting_body import make_body
from warmstart.transfer.training import train_classifier

__all__ = ["FinetuneResult", "finetune"]

#: --recipe auto's time budget when --time-budget is not given (seconds).
AUTO_BUDGET = 15 * 60.0
#: The options a --recipe run reads besides the data's (the recipes choose the rest).
RECIPE_OPTIONS = {"init", "max_len", "truncation", "tokenizer", "lowercase", "unlabeled",
                  "unlabeled_field", "unlabeled_max", "seed", "precision", "time_budget",
                  "threads", "device"}


@dataclass
class FinetuneResult:
    classifier: Classifier
    training: TrainResult | None
    dev: dict[str, dict[str, Any]]  # task -> classification report on dev
    out: Path | None
    auto: dict[str, Any] | None = None  # --recipe: what ran; auto's choice and its CV table

    @property
    def summary(self) -> dict[str, Any]:
        first = next(iter(self.dev.values()), {})
        recipe = {} if self.auto is None else {
            "recipe": self.auto.get("chosen", self.auto["recipe"]),
            **({"cv_accuracy": next(r["accuracy"] for r in self.auto["cross_validation"]
                                    if r["chosen"])} if "cross_validation" in self.auto else {})}
        return {"out": str(self.out) if self.out else None, **recipe,
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
    data_values, ft_values, train_values, few_values, recipe_values = split_settings(
        SETTINGS, options, where="options")
    data, cfg, few = DataConfig(**data_values), FinetuneConfig(**ft_values), FewLabelsConfig(**few_values)
    recipe = RecipeConfig(**recipe_values)
    _check_recipe_options(recipe, set(recipe_values))
    seed = int(train_values.get("seed", 0))
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_out(out_dir)
    if recipe.recipe:
        if tasks:
            raise WarmstartError("--recipe trains one task; drop --task")
        ignored = sorted((set(ft_values) | set(few_values) | set(train_values)) - RECIPE_OPTIONS)
        if ignored:
            raise WarmstartError(
                f"--recipe {recipe.recipe} chooses its own settings; "
                f"{', '.join(map(option_name, ignored))} would do nothing: "
                "drop it, or train without --recipe")
        return _finetune_recipe(train_data, data, cfg, few, recipe, TrainConfig(**train_values),
                                out_dir, progress,
                                tokenizer=cfg.tokenizer if "tokenizer" in ft_values else "auto")
    if "," in cfg.init:
        raise WarmstartError(f"--init {cfg.init}: several starting points are for --recipe "
                             "(auto or a recipe's name); give one --init, or a --recipe")

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

    unlabeled = read_unlabeled(few, seed)
    teacher = load_teacher(few.teacher) if few.teacher else None
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
    results: list[TrainResult | None] = []

    def fit_round(train_set: LabeledDataset, r: int, pseudo: LabeledDataset | None) -> Classifier:
        if start is not None:
            body.load_state_dict(start)
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
        results.append(result)
        return classifier

    if teacher is not None:
        teacher.precision = tcfg.precision
    classifier, rounds = self_train(fit_round, labeled, unlabeled, few, teacher=teacher,
                                    progress=progress)
    result = results[-1]
    for t in task_list:  # multi-label: the decision threshold that does best on dev
        if t.multi_label:
            from warmstart.evaluation.classification import tune_thresholds

            dev_set = splits[t.name][1]
            probs = classifier.predict_proba(dev_set.texts, task=t.name)
            classifier.thresholds[t.name] = float(tune_thresholds(dev_set.y, probs))

    dev_reports = {t.name: evaluate(classifier, splits[t.name][1], task=t.name)
                   for t in task_list}
    if out_dir is not None:
        # What the loop ran with (the epochs and schedule it chose where none were given), so
        # that `--config OUT/warmstart.json` trains the same way again.
        ran_with = result.config if result is not None and result.config else dataclasses.asdict(tcfg)
        settings = {"data": dataclasses.asdict(data), "finetune": dataclasses.asdict(cfg),
                    "train": ran_with, "few_labels": dataclasses.asdict(few)}
        provenance: dict[str, Any] = {
            name: {"source": tr.source, "hash": tr.content_hash(), "n": len(tr)}
            for name, (tr, _) in splits.items()}
        if rounds:
            provenance["self_training"] = rounds
        _save(out_dir, classifier, settings, result, dev_reports, parent=parent, data=provenance)
    return FinetuneResult(classifier=classifier, training=result, dev=dev_reports, out=out_dir)


def _finetune_recipe(
    train_data: Any, data: DataConfig, cfg: FinetuneConfig, few: FewLabelsConfig,
    recipe: RecipeConfig, tcfg: TrainConfig, out_dir: Path | None, progress: bool, *,
    tokenizer: str,
) -> FinetuneResult:
    """``--recipe``: a named recipe, or ``auto``'s cross-validated choice, on every label.
    ``tokenizer``: TF-IDF's, or ``auto`` (characters for Chinese text, else words)."""
    import sys

    from warmstart.tokenize.remembered import remember_tokens
    from warmstart.transfer.auto import fit_auto
    from warmstart.transfer.candidates import named_recipe
    from warmstart.transfer.recipes import Workspace, task_of

    labeled = _read(train_data, data)
    if labeled.multi_label or len(labeled.labels) < 2:
        raise WarmstartError(f"{labeled.source}: --recipe needs one label per text and at least "
                             f"2 classes (found {len(labeled.labels)}; check --label-field)")
    unlabeled = read_unlabeled(dataclasses.replace(few, unlabeled_max=0), tcfg.seed)
    inits = [p for p in cfg.init.split(",") if p] if cfg.init else []
    budget = parse_duration(tcfg.time_budget) if tcfg.time_budget else None
    ws = Workspace(max_len=cfg.max_len, truncation=cfg.truncation, precision=tcfg.precision,
                   progress=False, tokenizer=tokenizer, lowercase=cfg.lowercase,
                   in_batch=recipe.in_batch)

    def echo(line: str) -> None:
        if progress:
            print(line, file=sys.stderr, flush=True)

    auto: dict[str, Any] = {"recipe": recipe.recipe}
    if recipe.recipe == "auto":
        if budget is None:
            budget = AUTO_BUDGET
            echo(f"auto: no --time-budget given; taking at most {AUTO_BUDGET / 60:.0f} minutes")
        found = fit_auto(labeled, unlabeled, inits, time_budget=budget, seed=tcfg.seed,
                         select=recipe.auto_select, folds=recipe.cv_folds,
                         repeats=recipe.cv_repeats, pool_max=few.unlabeled_max or 4000,
                         workspace=ws, echo=echo)
        fitted = found.fitted
        auto.update(chosen=found.chosen, reason=found.reason, folds=found.folds,
                    repeats=found.repeats, seconds=round(found.seconds, 1),
                    in_batch=ws.in_batch, cross_validation=found.table)
    else:
        chosen = named_recipe(recipe.recipe, inits, unlabeled=bool(unlabeled))
        with remember_tokens():  # a teacher and its students read the same texts
            fitted = chosen.fit(labeled, unlabeled[: few.unlabeled_max or None], ws,
                                seed=tcfg.seed)
    classifier = fitted.to_classifier(task_of(labeled))
    dev = {"label": evaluate(classifier, _read(data.dev, data, like=labeled))} if data.dev else {}
    if out_dir is not None:
        settings = {"data": dataclasses.asdict(data), "finetune": dataclasses.asdict(cfg),
                    "train": dataclasses.asdict(tcfg), "few_labels": dataclasses.asdict(few),
                    "recipe": dataclasses.asdict(recipe), "auto": auto}
        provenance = {"label": {"source": labeled.source, "hash": labeled.content_hash(),
                                "n": len(labeled)},
                      "unlabeled": {"source": few.unlabeled, "n": len(unlabeled)}}
        _save(out_dir, classifier, settings, None, dev, parent=cfg.init or None, data=provenance)
    return FinetuneResult(classifier=classifier, training=None, dev=dev, out=out_dir, auto=auto)


def _check_recipe_options(recipe: RecipeConfig, given: set[str]) -> None:
    """Refuse --recipe's own options where they would do nothing: without --recipe, and
    auto's choosing options with a named recipe."""
    def named(names: set[str]) -> str:
        return ", ".join(map(option_name, sorted(names)))

    if not recipe.recipe and given - {"recipe"}:
        raise WarmstartError(f"{named(given - {'recipe'})}: for --recipe runs; give --recipe "
                             "auto (or a recipe's name), or drop it")
    choosing = given & {"auto_select", "cv_folds", "cv_repeats"}
    if recipe.recipe and recipe.recipe != "auto" and choosing:
        raise WarmstartError(f"{named(choosing)}: how --recipe auto chooses; --recipe "
                             f"{recipe.recipe} is already chosen: drop it, or give --recipe auto")


def _start(
    cfg: FinetuneConfig, few: FewLabelsConfig,
    splits: Splits, train_values: dict[str, Any],
    extra: dict[str, list[str]], seed: int, progress: bool, pairs_out: Path | None,
) -> tuple[Body, str | None, TrainConfig]:
    """The body to transfer from, after SetFit's pair phase if asked, and the loop's settings."""
    texts = [t for tr, _ in splits.values() for t in tr.texts]
    if few.consistency or few.self_train:  # words only unlabeled text has get embeddings too
        texts += extra["unlabeled"]
    torch.manual_seed(seed)
    body, parent = make_body(cfg, texts)
    kind = "encoder" if isinstance(body, EncoderBody) else "words"
    tcfg = TrainConfig(**{**BODY_DEFAULTS[kind], **train_values})
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
    splits: Splits, task_list: list[Task],
    tcfg: TrainConfig, train_values: dict[str, Any], extra: dict[str, list[str]],
    out: Path | None, progress: bool,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[Classifier, TrainResult | None]:
    """A classifier on ``body`` by ``cfg.method``: probe, prototype or fine-tuning."""
    if cfg.method == "probe":
        return probe(body, task_list, splits, cfg, tcfg.precision), None
    if cfg.method == "prototype":
        return prototype(body, task_list, splits, tcfg.precision), None
    return train_classifier(body, task_list, splits, cfg, tcfg, out, progress,
                            chosen=set(train_values), few=few, extra=extra,
                            on_validate=on_validate)


def _augmenter(few: FewLabelsConfig) -> Any:
    from warmstart.transfer.augment.dataset import AugmentConfig, make_augmenter

    # Without vectors there are no synonyms: EDA's swaps and deletions only.
    synonyms = 0.1 if few.augment_vectors else 0.0
    return make_augmenter(AugmentConfig(vectors=few.augment_vectors, mlm=few.augment_mlm,
                                        sr=synonyms, ri=synonyms))


def _with_copies(ds: LabeledDataset, augmenter: Any, copies: int, seed: int) -> LabeledDataset:
    """``ds`` followed by ``copies`` augmented copies of each example, with its labels."""
    from warmstart.transfer.augment.base import augment_copies

    made = augment_copies(augmenter, ds.texts, copies, np.random.default_rng([seed, 5]))
    texts = ds.texts + [c for i in range(copies) for c in (m[i] for m in made)]
    return dataclasses.replace(ds, texts=texts, y=np.concatenate([ds.y] * (1 + copies)),
                               line_numbers=None, doc_files=None)


def _save(
    out: Path, classifier: Classifier, settings: dict[str, Any], result: TrainResult | None,
    dev: dict[str, dict[str, Any]], *, parent: str | None, data: dict[str, Any],
) -> None:
    from warmstart.evaluation.classification import write_report
    from warmstart.train.plots import plot_losses

    with building(out) as folder:
        classifier.save_into(folder, config=settings, parent=parent, data=data)
        if result is not None:
            append_metrics(folder / METRICS_FILE, result.history)
            plot_losses(result.history, folder / "plots" / "loss.png", title="fine-tuning")
        for name, report in dev.items():
            write_report(report, folder / "dev" / name if len(dev) > 1 else folder / "dev")
