"""What a trial runs and scores: one function per tuned command.

An objective gets the options of one trial (the fixed ones and the drawn ones), trains for
real, and returns the score the study maximises. ``report(n, value)`` receives the
intermediate dev scores that pruners judge (the ``n``-th evaluation); it raises to prune.

* :func:`finetune_score`: ``warmstart finetune`` on the labeled data; the dev ``accuracy`` or
  ``macro_f1`` (dev: ``--dev`` or the held-out ``--dev-fraction``). Fine-tuning reports its
  dev accuracy after each evaluation, so pruners can stop a trial early.
* :func:`vectors_score`: ``warmstart vectors`` on a corpus; the accuracy on an analogy file
  (``analogy``) or the Spearman correlation on a word-pair file (``similarity``), ``--eval``.
  Word-vector training has no intermediate scores: nothing is pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warmstart.errors import WarmstartError

Report = Callable[[int, float], None]

#: The tunable commands, their metrics, and the config table their best options go to.
TARGETS = {"finetune": ("accuracy", "macro_f1"), "vectors": ("analogy", "similarity")}


def option_types(target: str) -> dict[str, type]:
    """The options of ``target`` a search space may vary, with their Python types."""
    import dataclasses

    from warmstart.config import FIELD_TYPES, field_kind

    return {f.name: FIELD_TYPES[field_kind(f)]
            for cls in _settings_classes(target) for f in dataclasses.fields(cls)}


def _settings_classes(target: str) -> tuple[type, ...]:
    if target == "finetune":
        from warmstart.transfer.settings import SETTINGS

        return SETTINGS
    if target == "vectors":
        from warmstart.vectors.train import VectorsConfig

        return (VectorsConfig,)
    raise WarmstartError(f"--target {target}: use one of {', '.join(TARGETS)}")


def check_options(target: str, options: dict[str, Any], *, where: str) -> None:
    """Fixed options of ``target``: known names and right types, else an error naming ``where``."""
    from warmstart.config import split_settings

    split_settings(_settings_classes(target), dict(options), where=where)


def finetune_score(data: Any, options: dict[str, Any], metric: str, report: Report | None) -> float:
    """Fine-tune with ``options`` and return the dev ``metric`` of the first task."""
    from warmstart.transfer.finetune import finetune

    def on_validate(n: int, record: dict[str, Any]) -> None:
        value = next((v for k, v in record.items()
                      if k.startswith("valid_") and k.endswith("_accuracy")), None)
        if report is not None and value is not None:
            report(n, float(value))

    result = finetune(data, progress=False, on_validate=on_validate, **options)
    if not result.dev and result.auto is not None:
        # --recipe without --dev: the chosen recipe's cross-validated accuracy on the labels
        chosen = next((r for r in result.auto.get("cross_validation", []) if r["chosen"]), None)
        if chosen is None or chosen["accuracy"] is None or metric != "accuracy":
            raise WarmstartError("tuning --recipe without --dev scores trials by the chosen "
                                 "recipe's cross-validated accuracy, which this trial has not "
                                 "got: give --dev FILE (a labeled file to score trials on)")
        return float(chosen["accuracy"]) / 100.0
    dev = next(iter(result.dev.values()))
    if metric not in dev:
        raise WarmstartError(f"--metric {metric}: the dev report has "
                             f"{', '.join(k for k, v in dev.items() if isinstance(v, float))}")
    return float(dev[metric])


def vectors_score(data: Any, options: dict[str, Any], metric: str, report: Report | None,
                  *, eval_file: str) -> float:
    """Train word vectors with ``options``; their analogy accuracy or word-pair Spearman."""
    from warmstart.evaluation.intrinsic import evaluate_analogies, evaluate_word_pairs
    from warmstart.vectors.train import train_vectors

    kv = train_vectors(data, progress=False, **options)
    if metric == "analogy":
        return float(evaluate_analogies(kv, eval_file)["accuracy"])
    spearman = evaluate_word_pairs(kv, eval_file)["spearman"]
    if spearman is None:
        raise WarmstartError(f"--eval {eval_file}: fewer than 2 word pairs have vectors")
    return float(spearman)
