"""``warmstart tune``: an Optuna study over the options of ``finetune`` or ``vectors``.

    >>> result = tune("train.tsv", space_file="space.toml", out="runs/tune",
    ...               sampler="tpe", pruner="median", n_trials=20)            # doctest: +SKIP
    >>> result.best_params                                                     # doctest: +SKIP
    {'lr': 0.0031, 'dropout': 0.21}

The space file holds the search space (``[space.OPTION]`` tables, see
:mod:`warmstart.tuning.space`), the options every trial shares (a ``[finetune]`` or ``[vectors]``
table, as in ``--config`` files) and the study's own settings (a ``[tune]`` table: the fields
of :class:`TuneConfig`; keyword arguments override them).

Every trial is a real run scored on dev. The study lives in a database (an SQLite file in
``out`` by default), so a crash loses at most the running trial and the same command resumes
the study by name; with ``storage="postgresql://..."`` workers on several machines share it.
A resumed study draws on from where it was: its sampler's seed mixes in the number of trials
already in the study, so it does not replay the draws of the earlier runs.
A trial that fails (a bad combination of options, running out of memory) is recorded as
failed and the study goes on. A trial whose worker was killed mid-trial is marked failed and
its parameters queued again, with a warning: at once by the next run on the same machine (the
worker's process is gone), and otherwise once the trial has stopped sending heartbeats, by the
next worker to start a trial. Ctrl-C stops cleanly: the running trial is recorded as failed and
queued again for the next run.

Results in ``out``: ``best.toml`` (the shared and best options as a ``[finetune]`` or
``[vectors]`` table: ``warmstart finetune TRAIN --config best.toml`` re-runs the best trial),
``trials.csv``, ``summary.json`` and PNG plots (history, parameter importances, parallel
coordinates).
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from warmstart.config import load_toml, opt, option_name, read_toml
from warmstart.errors import RunInterrupted, WarmstartError
from warmstart.tuning.objectives import (
    TARGETS,
    check_options,
    finetune_score,
    option_types,
    vectors_score,
)
from warmstart.tuning.report import TuneResult, write_results
from warmstart.tuning.space import SearchSpace

SAMPLERS = ("random", "tpe", "gp")
PRUNERS = ("none", "median", "halving", "hyperband")
#: How many times the parameters of a trial whose worker died are run again.
MAX_RETRIES = 3


@dataclass
class TuneConfig:
    """How a study searches: the target, its score, the sampler, pruner, budget and storage."""

    target: str = opt("finetune", "what a trial trains: finetune (a classifier on labeled "
                                  "data) or vectors (word vectors on a corpus)")
    metric: str = opt("", "score to maximise: accuracy or macro_f1 on dev (finetune); analogy "
                          "or similarity on --eval (vectors); empty: the first of these")
    eval: str = opt("", "vectors: the analogy or word-pair file that scores a trial")
    sampler: str = opt("tpe", "random, tpe (tree-structured Parzen estimator) or gp "
                              "(Gaussian-process Bayesian optimisation)")
    pruner: str = opt("none", "stop trials whose dev scores fall behind: none, median, "
                              "halving (successive halving) or hyperband")
    n_trials: int = opt(20, "trials the study should have finished, pruned ones included "
                            "(a resumed study counts its earlier trials)", at_least=1)
    timeout: str = opt("", "this worker's wall-time budget, e.g. 30m or 2h (empty: none)")
    repeats: int = opt(1, "train each trial this many times (seeds seed, seed+1, ...) and "
                          "score the mean", at_least=1)
    study: str = opt("warmstart", "study name in the storage: the same name resumes it")
    storage: str = opt("", "database URL; default sqlite:///OUT/study.db; "
                           "postgresql://user@host/db lets several workers share a study")
    sampler_seed: int = opt(0, "seed of the sampler's draws (a resumed study mixes in its number "
                               "of trials so far, and with --storage each worker its process "
                               "id, so that no run replays another's draws)", at_least=0,
                            at_most=2**32 - 1)
    heartbeat: int = opt(30, "seconds between a running trial's heartbeats; a trial silent "
                             "for 4 of them (its worker died) is failed and queued again",
                         at_least=1, at_most=86_400)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise WarmstartError(f"--target {self.target}: use one of {', '.join(TARGETS)}")
        metrics = TARGETS[self.target]
        self.metric = self.metric or metrics[0]
        if self.metric not in metrics:
            raise WarmstartError(f"--metric {self.metric}: {self.target} is scored by "
                                 f"{' or '.join(metrics)}")
        if self.target == "vectors" and not self.eval:
            raise WarmstartError(f"--target vectors: give --eval, the {self.metric} file that "
                                 "scores a trial")
        if self.sampler not in SAMPLERS:
            raise WarmstartError(f"--sampler {self.sampler}: use one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise WarmstartError(f"--pruner {self.pruner}: use one of {', '.join(PRUNERS)}")
        for name in ("n_trials", "repeats", "heartbeat"):
            if getattr(self, name) < 1:
                raise WarmstartError(f"{option_name(name)} {getattr(self, name)}: "
                                     "must be 1 or more")


class TrialFailed(Exception):
    """A trial that raised: Optuna records it as failed and the study goes on."""


def read_space_file(path: str | Path, target: str) -> tuple[dict[str, Any], dict[str, Any],
                                                              dict[str, Any]]:
    """(space tables, the target's fixed options, [tune] settings) of a space file."""
    p = Path(path)
    data = load_toml(p, option="--space")
    unknown = set(data) - {"space", "tune", *TARGETS}
    if unknown:
        raise WarmstartError(f"--space {p}: unknown table(s) {', '.join(sorted(unknown))}; "
                             f"use [space.OPTION], [tune] and [{target}]")
    fixed = read_toml(p, section=target) if isinstance(data.get(target), dict) else {}
    settings = read_toml(p, section="tune") if isinstance(data.get("tune"), dict) else {}
    return data.get("space", {}), fixed, settings


def space_target(space_file: str | Path) -> str:
    """The target a space file's ``[tune]`` table names (``finetune`` when it names none)."""
    try:
        return str(read_toml(space_file, section="tune").get("target", "finetune"))
    except WarmstartError:
        return "finetune"  # tune() reports the file's problem with its own name


def tune(
    data: Any,
    *,
    space_file: str | Path,
    out: str | Path,
    fixed: dict[str, Any] | None = None,
    progress: bool = True,
    **options: Any,
) -> TuneResult:
    """Run (or resume) the study of ``space_file`` on ``data``; write its results to ``out``.

    ``data``: the labeled file for ``finetune``, the corpus path(s) for ``vectors``.
    ``options``: :class:`TuneConfig` fields, over the space file's ``[tune]`` table; the
    target is ``options["target"]``, else the one that table names (:func:`space_target`).
    ``fixed``: options of the target that every trial uses, over the file's own table.
    """
    import optuna

    from warmstart.config import check_settings

    target = options.get("target") or space_target(space_file)
    if target == "finetune" and isinstance(data, list | tuple):
        if len(data) != 1:
            raise WarmstartError(f"tune finetune takes one labeled file, got {len(data)}: "
                                 f"{' '.join(map(str, data))}")
        data = data[0]
    tables, file_fixed, file_settings = read_space_file(space_file, target)
    settings = {**file_settings, **options, "target": target}
    check_settings(TuneConfig, settings, where=f"--space {space_file} [tune]")
    cfg = TuneConfig(**settings)
    fixed = {**file_fixed, **(fixed or {})}
    check_options(cfg.target, fixed, where=f"--space {space_file} [{cfg.target}]")
    space = SearchSpace.parse(tables, options=option_types(cfg.target), where=f"--space {space_file}")
    both = sorted(set(space.names) & set(fixed))
    if both:
        raise WarmstartError(f"--space {space_file}: {', '.join(both)} is both fixed and tuned; "
                             "remove it from one place")
    seconds = _seconds(cfg.timeout)
    out_dir = Path(out)
    made = [p for p in [out_dir, *out_dir.parents] if not p.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe.", dir=out_dir))
    except OSError as e:
        raise WarmstartError(f"--out {out_dir}: cannot write there ({e.strerror or e}); "
                             "choose a folder you can write to") from None

    # Failed trials are reported once, by our warning; Optuna would add their traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        storage = _storage(cfg, out_dir)
    except WarmstartError:
        if made:  # a study that never opened leaves nothing behind
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    study = optuna.create_study(study_name=cfg.study, storage=storage,
                                sampler=_sampler(cfg, n_before=_n_trials(storage, cfg.study)),
                                pruner=_pruner(cfg), direction="maximize", load_if_exists=True)
    _check_same_study(study, cfg, fixed, space_file)
    _fail_trials_of_dead_workers(study, storage)
    _requeue_interrupted(study)

    def score(trial_options: dict[str, Any], report: Any) -> float:
        if cfg.target == "finetune":
            return finetune_score(data, trial_options, cfg.metric, report)
        return vectors_score(data, trial_options, cfg.metric, report, eval_file=cfg.eval)

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        # Two writes: the namespace first, so that a trial that names its worker always has
        # it too. A worker killed between them (a kill -9 seen in the test suite) left a
        # trial that the next run on this machine could not recognise as its dead worker's.
        trial.set_user_attr("pid_namespace", _pid_namespace())
        trial.set_user_attr("worker", worker)
        params = space.suggest(trial)
        base_seed = int(fixed.get("seed", 1 if cfg.target == "vectors" else 0))
        scores = []
        try:
            for i in range(cfg.repeats):
                report = _reporter(trial) if i == 0 and cfg.pruner != "none" else None
                scores.append(score({**fixed, **params, "seed": base_seed + i}, report))
        except optuna.TrialPruned:
            raise
        except (RunInterrupted, KeyboardInterrupt):
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as e:  # noqa: BLE001  (any failure, out of memory included)
            message = f"{type(e).__name__}: {e}".strip()
            trial.set_user_attr("error", message[:2000])
            warnings.warn(f"trial {trial.number} failed ({message[:300]}); the study goes on",
                          stacklevel=1)
            raise TrialFailed(message) from e
        trial.set_user_attr("scores", scores)
        return statistics.fmean(scores)

    bar = _Bar(progress, cfg.n_trials, _finished(study))
    started = time.monotonic()

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished = _finished(study)
        failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
        bar.update(finished, trial, _best_value(study))
        if finished >= cfg.n_trials:
            study.stop()
        elif failed >= cfg.n_trials and (finished == 0 or failed >= 3 * cfg.n_trials):
            # Every trial failing is a mistake to fix, not bad luck: stop.
            warnings.warn(f"study {cfg.study}: {failed} failed trials; stopping (see the "
                          f"error column of {out_dir / 'trials.csv'})", stacklevel=1)
            study.stop()
        elif seconds and time.monotonic() - started >= seconds:
            study.stop()

    interrupted = False
    try:
        if _finished(study) < cfg.n_trials:
            study.optimize(objective, catch=(TrialFailed,), callbacks=[after_trial],
                           gc_after_trial=True)
    except (RunInterrupted, KeyboardInterrupt):
        interrupted = True
    finally:
        bar.close()

    result = write_results(study, cfg, fixed, out_dir, interrupted=interrupted)
    if interrupted:
        raise RunInterrupted(f"study {cfg.study!r} stopped with {_finished(study)} of "
                             f"{cfg.n_trials} trials; its results so far are in {out_dir}; run "
                             "the same command again to continue it")
    return result


def _seconds(timeout: str) -> float:
    if not timeout:
        return 0.0
    from warmstart.train.budget import parse_duration

    return parse_duration(timeout, option="--timeout")


T = TypeVar("T")


def _storage(cfg: TuneConfig, out_dir: Path) -> Any:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = cfg.storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"

    class RetryWithWarning(RetryHeartbeatStaleTrialCallback):
        """Optuna's retry of a trial whose worker died, and a warning that says so."""

        def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            tries = len(trial.system_attrs.get("retry_history", [])) + 1
            worker = trial.user_attrs.get("worker", "an unknown worker")
            then = ("its parameters are queued again" if tries <= MAX_RETRIES else
                    f"its parameters are not queued again: they were tried {tries} times")
            warnings.warn(f"trial {trial.number} was running in {worker}, which died (killed, "
                          f"or its machine lost); it is marked failed and {then}", stacklevel=1)
            # The retry is not the dead worker's trial: it gets the worker that runs it.
            retry = copy.copy(trial)
            retry.user_attrs = {k: v for k, v in trial.user_attrs.items()
                                if k not in ("worker", "pid_namespace")}
            super().__call__(study, retry)

    def open_storage() -> Any:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url, heartbeat_interval=cfg.heartbeat, grace_period=4 * cfg.heartbeat,
                heartbeat_stale_trial_callback=RetryWithWarning(max_retry=MAX_RETRIES))

    try:
        return retry_schema_race(open_storage)
    except ImportError as e:
        raise WarmstartError(f"--storage {url}: the database driver is missing ({e}); for "
                             "PostgreSQL: pip install psycopg2-binary") from None
    except Exception as e:  # noqa: BLE001  (bad URL, server down, no permission...)
        raise WarmstartError(f"--storage {url}: cannot open the database "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:300]})") from None


def retry_schema_race(open_storage: Callable[[], T], attempts: int = 5) -> T:
    """``open_storage()``, tried again when another process was creating the same new database.

    Workers started together on a fresh database (or a run and a reader of its ``study.db``)
    each create Optuna's tables; the loser of that race gets a unique-constraint or
    "already exists" error from the database, and the tables are there a moment later.
    """
    for attempt in range(1, attempts + 1):
        try:
            return open_storage()
        except Exception as e:  # noqa: BLE001  (sqlalchemy's errors, whatever the driver)
            race = type(e).__name__ == "IntegrityError" or "already exists" in str(e)
            if not race or attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _n_trials(storage: Any, name: str) -> int:
    """Trials in study ``name`` of ``storage`` (in any state), 0 if there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _sampler(cfg: TuneConfig, *, n_before: int = 0) -> Any:
    """The sampler of a run that starts with ``n_before`` trials in its study.

    A sampler seeded as before would replay the earlier runs' random stream, and draw their
    trials again (random search, and the first trials of TPE and GP, repeat exactly), so a
    resumed study mixes its trial count into the seed; every run that drew a trial adds one.
    Workers sharing a study must not draw the same trials either: each mixes in its process.
    """
    import numpy as np
    import optuna

    seed = cfg.sampler_seed
    if n_before or cfg.storage:
        entropy = [seed % 2**32, n_before]
        if cfg.storage:
            entropy += [os.getpid(), zlib.crc32(socket.gethostname().encode())]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0]) % 2**31
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cfg.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if cfg.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        # multivariate + group: the joint density of parameters drawn together, which is
        # what conditional spaces need (Optuna's advice for them).
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _pruner(cfg: TuneConfig) -> Any:
    import optuna

    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if cfg.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _reporter(trial: Any) -> Any:
    import optuna

    def report(n: int, value: float) -> None:
        trial.report(value, n)
        if trial.should_prune():
            raise optuna.TrialPruned(f"dev accuracy {value:.4f} at evaluation {n}")

    return report


def _finished(study: Any) -> int:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:  # no complete trial yet
        return None


def _check_same_study(study: Any, cfg: TuneConfig, fixed: dict[str, Any], space_file: Any) -> None:
    """A resumed study must search the same target, metric and fixed options."""
    setup = {"target": cfg.target, "metric": cfg.metric, "repeats": cfg.repeats,
             "fixed": {k: fixed[k] for k in sorted(fixed)}}
    before = study.user_attrs.get("setup")
    if before is None:
        study.set_user_attr("setup", setup)
        return
    if before != setup:
        changed = sorted(k for k in setup if before.get(k) != setup[k])
        raise WarmstartError(
            f"study {cfg.study!r} in this storage was made with other settings ({', '.join(changed)}: "
            f"{', '.join(f'{before.get(k)!r} then, {setup[k]!r} now' for k in changed)}); "
            f"resume it with the same --space {space_file}, or name a new study with --study")


def _fail_trials_of_dead_workers(study: Any, storage: Any) -> None:
    """Fail, and queue again, the running trials of this machine's workers that are gone.

    A worker killed mid-trial (``kill -9``, out of memory) leaves its trial RUNNING. Its
    heartbeats stop, and after their grace period any worker fails and retries it; but a
    study resumed at once on the same machine would finish with that trial still RUNNING.
    A trial records the ``host:pid`` of its worker and its PID namespace (containers sharing
    a host name have their own): if that process no longer exists here, the trial is failed
    now and retried as the heartbeat would (with the same warning). Trials of other machines
    or containers are left to the heartbeat.
    """
    import optuna

    if os.name != "posix":  # os.kill(pid, 0) checks a process only on POSIX
        return
    host, namespace = socket.gethostname(), _pid_namespace()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    dead = [t for t in running if t.user_attrs.get("pid_namespace") == namespace
            and _dead_worker(t.user_attrs.get("worker", ""), host)]
    if not dead:
        return
    study_id = storage.get_study_id_from_name(study.study_name)
    retry = storage.get_heartbeat_stale_trial_callback()
    for t in dead:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first, and retries it
        if retry is not None:
            retry(study, storage.get_trial(trial_id))


def _pid_namespace() -> str:
    """This process's PID namespace (Linux), "" where there is none to read."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _dead_worker(worker: str, host: str) -> bool:
    """Whether ``worker`` (``host:pid``) was a process of this machine that no longer runs."""
    where, _, pid = worker.rpartition(":")
    if where != host or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        # Not a trial of this run (it runs none yet): of an earlier process that had our id,
        # or of an earlier call in this process that an exception ended mid-trial.
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # there, but another user's
        return False
    return False


def _requeue_interrupted(study: Any) -> None:
    """Queue again, once, the parameters of trials a Ctrl-C stopped.

    Those are the failed trials marked interrupted that no retry copies already. Only those:
    a trial whose worker died is retried by its heartbeat, a limited number of times, so that
    parameters that kill their worker (out of memory) are not run again on every resume.
    """
    import optuna

    trials = study.get_trials(deepcopy=False)
    done = set(study.user_attrs.get("requeued", []))
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    again = [t for t in trials if t.state == optuna.trial.TrialState.FAIL
             and t.user_attrs.get("interrupted") and t.number not in retried | done]
    for t in again:
        study.enqueue_trial(t.params)
    if again:
        study.set_user_attr("requeued", sorted(done | {t.number for t in again}))


class _Bar:
    """The live display: finished trials of the study, and the best score so far."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=min(done, total), desc="trials", unit="trial",
                            file=sys.stderr, dynamic_ncols=True)

    def update(self, finished: int, trial: Any, best: float | None) -> None:
        if self.bar is None:
            return
        self.bar.n = min(finished, self.bar.total)
        value = "failed" if trial.value is None and trial.state.name == "FAIL" else (
            "pruned" if trial.state.name == "PRUNED" else f"{trial.value:.4f}")
        self.bar.set_postfix_str(f"last #{trial.number}: {value}; best "
                                 f"{'-' if best is None or math.isnan(best) else f'{best:.4f}'}")
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
