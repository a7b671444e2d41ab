"""Hyperparameter search (``warmstart tune``): spaces, samplers, pruning, resuming, failures.

The studies run real trials: the word-vector classifier on 400 AG News headlines (100 per
class, 10% held out as dev), a few seconds each. Chance is 25%; a good learning rate gets
about 70%, a poor one stays near chance, so the samplers and pruners have something to find.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import read_agnews
from test_cli import ok, run, user_error

from warmstart.config import read_toml
from warmstart.errors import WarmstartError
from warmstart.transfer.finetune import finetune
from warmstart.tuning.objectives import option_types
from warmstart.tuning.report import best_config_text
from warmstart.tuning.space import SearchSpace
from warmstart.tuning.study import retry_schema_race, tune

FINETUNE = option_types("finetune")
SPACE = """
[finetune]
epochs = 6
dim = 32

[space.lr]
type = "float"
low = 1e-4
high = 3e-1
log = true
"""


@pytest.fixture(scope="module")
def headlines(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, _ = read_agnews(shared_data)
    few = train.sample_per_class(100, seed=0)
    path = tmp_path_factory.mktemp("tune") / "ag.tsv"
    lines = ["text\tlabel"] + [f"{t.replace(chr(9), ' ')}\t{few.labels[y]}"
                               for t, y in zip(few.texts, few.y, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def study_of(out: Path, name: str = "warmstart") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- search spaces ----------------------------------------------------------------------------


def test_space_draws_conditional_parameters_only_when_their_condition_holds() -> None:
    space = SearchSpace.parse({
        "penalty": {"type": "categorical", "choices": ["l2", "elasticnet"]},
        "l1_ratio": {"type": "float", "low": 0.1, "high": 0.9,
                     "when": {"penalty": "elasticnet"}},
        "C": {"type": "float", "low": 1e-3, "high": 1e3, "log": True},
    }, options=FINETUNE, where="space.toml")
    plain = space.suggest(optuna.trial.FixedTrial({"penalty": "l2", "C": 2.0}))
    assert plain == {"penalty": "l2", "C": 2.0}
    mixed = space.suggest(optuna.trial.FixedTrial({"penalty": "elasticnet", "l1_ratio": 0.3,
                                                   "C": 2.0}))
    assert mixed == {"penalty": "elasticnet", "l1_ratio": 0.3, "C": 2.0}
    # Over a real study, l1_ratio is recorded only in the trials that drew the elastic net.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: float(len(space.suggest(t))), n_trials=20)
    for t in study.trials:
        assert ("l1_ratio" in t.params) == (t.params["penalty"] == "elasticnet")
    assert {t.params["penalty"] for t in study.trials} == {"l2", "elasticnet"}


@pytest.mark.parametrize("tables, message", [
    ({"learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}, "unknown option 'learning_rate'"),
    ({"lr": {"type": "float", "low": 1.0, "high": 0.1}}, "low 1.0 is above high 0.1"),
    ({"penalty": {"type": "categorical", "choices": []}}, "choices must be a non-empty list"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale needs low above 0"),
    ({"lr": {"type": "uniform", "low": 0.0, "high": 1.0}}, "type must be one of"),
    ({"lr": {"type": "float", "high": 1.0}}, "low is missing"),
    ({"lr": {"type": "float", "low": 0.1, "high": 1.0, "choices": [1]}}, "unknown key(s) choices"),
    ({"penalty": {"type": "int", "low": 1, "high": 2}}, "takes a string; use type = \"categorical\""),
    ({"batch_size": {"type": "float", "low": 8, "high": 64}}, "takes an integer; use type = \"int\""),
    ({"penalty": {"type": "categorical", "choices": ["l1", 2]}}, "choice 2 is not a string"),
    ({"l1_ratio": {"type": "float", "low": 0.1, "high": 0.9, "when": {"penalty": "l1"}}},
     "when names 'penalty', which is not a parameter written above"),
    ({"penalty": {"type": "categorical", "choices": ["l1", "l2"]},
      "l1_ratio": {"type": "float", "low": 0.1, "high": 0.9, "when": {"penalty": "elastic"}}},
     "when penalty = 'elastic', which is not one of its choices"),
    ({}, "the search space is empty"),
])
def test_bad_search_spaces_are_named(tables: dict, message: str) -> None:
    with pytest.raises(WarmstartError) as e:
        SearchSpace.parse(tables, options=FINETUNE, where="space.toml")
    assert message in str(e.value)
    assert str(e.value).startswith("space.toml")


def test_best_config_is_toml_that_reads_back() -> None:
    options = {"lr": 1e-05, "dropout": 0.25, "epochs": 3, "method": "finetune",
               "standardize": False, "init": 'runs/a "b"', "big": 10**18, "whole": 3.0,
               "max_hours": float("inf"), "label_field": "标签\t\\ \x7f\x01"}
    text = best_config_text("finetune", options, ["trial 3", "re-run: warmstart finetune"])
    import tomllib

    assert text.startswith("# trial 3\n# re-run: warmstart finetune\n[finetune]\n")
    back = tomllib.loads(text)
    assert back == {"finetune": options}
    assert list(back["finetune"]) == sorted(options)
    assert isinstance(back["finetune"]["whole"], float)


# -- studies on a real task -------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp"])
def test_each_sampler_finds_a_learning_rate_that_learns(headlines: Path, tmp_path: Path,
                                                        sampler: str) -> None:
    result = tune(headlines, space_file=space_file(tmp_path, SPACE), out=tmp_path / "out",
                  sampler=sampler, n_trials=6, progress=False)
    study = study_of(tmp_path / "out")
    assert result.counts == {"complete": 6}
    values = [t.value for t in study.trials]
    # Chance is 0.25: the best of 6 learning rates must learn, and beat the worst by a margin.
    assert result.best_value == max(values) >= 0.55
    assert result.best_value - min(values) >= 0.1
    assert result.best_params == study.best_trial.params
    for name in ("best.toml", "trials.csv", "summary.json", "history.png", "parallel.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name


def test_resuming_continues_the_trial_count_and_best_config_reruns(headlines: Path,
                                                                   tmp_path: Path) -> None:
    space = space_file(tmp_path, SPACE)
    out = tmp_path / "out"
    tune(headlines, space_file=space, out=out, sampler="tpe", n_trials=3, progress=False)
    assert len(study_of(out).trials) == 3
    result = tune(headlines, space_file=space, out=out, sampler="tpe", n_trials=5,
                  progress=False)
    assert [t.number for t in study_of(out).trials] == [0, 1, 2, 3, 4]
    assert result.counts == {"complete": 5}
    # Asking for what is already there runs nothing.
    assert tune(headlines, space_file=space, out=out, n_trials=5, progress=False).counts == {
        "complete": 5}

    best = read_toml(out / "best.toml", section="finetune")
    assert best["lr"] == result.best_params["lr"] and best["epochs"] == 6
    rerun = finetune(str(headlines), progress=False, **best)
    assert abs(rerun.dev["label"]["accuracy"] - result.best_value) <= 0.05

    with pytest.raises(WarmstartError, match="made with other settings"):
        tune(headlines, space_file=space, out=out, n_trials=6, progress=False,
             metric="macro_f1")


def test_failed_trials_are_recorded_and_the_study_goes_on(headlines: Path,
                                                          tmp_path: Path) -> None:
    space = space_file(tmp_path, SPACE + """
[space.class_weights]
type = "categorical"
choices = ["none", "inverse"]
""")
    with pytest.warns(UserWarning, match="failed"):
        result = tune(headlines, space_file=space, out=tmp_path / "out", sampler="random",
                      n_trials=4, progress=False)
    assert result.counts["complete"] == 4 and result.counts["fail"] >= 1
    rows = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    failed = [r for r in rows if ",fail," in r]
    assert failed and all("--class-weights inverse: use none or balanced" in r for r in failed)
    assert all(t.params["class_weights"] == "none" for t in study_of(tmp_path / "out").trials
               if t.state == optuna.trial.TrialState.COMPLETE)


def test_median_pruning_stops_trials_that_fall_behind(headlines: Path, tmp_path: Path) -> None:
    result = tune(headlines, space_file=space_file(tmp_path, SPACE), out=tmp_path / "out",
                  sampler="random", pruner="median", n_trials=10, progress=False)
    study = study_of(tmp_path / "out")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.counts == {"complete": len(complete), "pruned": len(pruned)}
    assert len(study.trials) == 10 and pruned
    # Reports are numbered by evaluation (one per epoch here: 6), and a pruned trial stopped
    # before its last one, below the median of the earlier trials at that evaluation.
    assert all(sorted(t.intermediate_values) == list(range(1, 7)) for t in complete)
    for t in pruned:
        last = max(t.intermediate_values)
        assert last < 6
        earlier = sorted(c.intermediate_values[last] for c in complete if c.number < t.number)
        assert t.intermediate_values[last] < earlier[len(earlier) // 2]


def test_vectors_study_scores_word_pairs_and_its_best_config_reruns(shared_data: Path,
                                                                   tmp_path: Path) -> None:
    corpus = shared_data / "en" / "tiny" / "lee_background.cor"
    pairs = shared_data / "en" / "wordsim" / "wordsim353.tsv"
    space = space_file(tmp_path, """
[tune]
target = "vectors"
metric = "similarity"

[vectors]
dim = 32
workers = 1
min_count = 2

[space.epochs]
type = "int"
low = 1
high = 30
log = true

[space.model]
type = "categorical"
choices = ["skipgram", "cbow"]
""")
    result = tune(str(corpus), space_file=space, out=tmp_path / "out", target="vectors",
                  eval=str(pairs), sampler="random", n_trials=5, progress=False)
    study = study_of(tmp_path / "out")
    values = [t.value for t in study.trials]
    assert result.counts == {"complete": 5} and max(values) - min(values) >= 0.05
    best = read_toml(tmp_path / "out" / "best.toml", section="vectors")
    assert best["epochs"] == result.best_params["epochs"] and best["dim"] == 32
    from warmstart.evaluation.intrinsic import evaluate_word_pairs
    from warmstart.vectors.train import train_vectors

    kv = train_vectors(str(corpus), progress=False, **best)
    assert evaluate_word_pairs(kv, pairs)["spearman"] == pytest.approx(result.best_value, abs=1e-6)


def test_tune_in_python_takes_its_target_from_the_space_file(shared_data: Path,
                                                             tmp_path: Path) -> None:
    """As the CLI does: no target= given, the [tune] table's target (and its [vectors] table of
    fixed options) decides what a trial trains."""
    corpus = shared_data / "en" / "tiny" / "lee_background.cor"
    pairs = shared_data / "en" / "wordsim" / "wordsim353.tsv"
    space = space_file(tmp_path, f"""
[tune]
target = "vectors"
metric = "similarity"
eval = "{pairs}"

[vectors]
dim = 8
epochs = 1
workers = 1
min_count = 2

[space.window]
type = "int"
low = 2
high = 4
""")
    result = tune(str(corpus), space_file=space, out=tmp_path / "out", sampler="random",
                  n_trials=1, progress=False)
    assert result.counts == {"complete": 1} and result.best_value is not None
    best = read_toml(tmp_path / "out" / "best.toml", section="vectors")
    assert best["dim"] == 8 and best["epochs"] == 1 and 2 <= best["window"] <= 4
    from warmstart.tuning.study import space_target

    assert space_target(space) == "vectors"
    assert space_target(space_file(tmp_path, "[space.lr]\ntype = 'float'\n")) == "finetune"
    with pytest.raises(WarmstartError, match="tune finetune takes one labeled file, got 2"):
        tune(["a.tsv", "b.tsv"], space_file=tmp_path / "space.toml", out=tmp_path / "no")


def test_ctrl_c_keeps_the_study_and_the_next_run_finishes_it(headlines: Path,
                                                             tmp_path: Path) -> None:
    space = space_file(tmp_path, SPACE.replace("epochs = 6", "epochs = 60"))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.Popen([sys.executable, "-m", "warmstart", "tune", str(headlines),
                             "--space", str(space), "--out", str(out), "--n-trials", "2",
                             "--sampler", "random", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # interrupt once the first trial is training
            time.sleep(0.5)
            try:
                now = (retry_schema_race(lambda: study_of(out)).trials
                       if (out / "study.db").exists() else [])
            except KeyError:  # the database is there, the study not yet
                continue
            if any(t.state == optuna.trial.TrialState.RUNNING for t in now):
                time.sleep(2.0)
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to continue" in err and "Traceback" not in err
    first = study_of(out).trials
    assert [t.state for t in first] == [optuna.trial.TrialState.FAIL]
    assert "error" not in first[0].user_attrs  # not a failure of the trial's own

    result = tune(headlines, space_file=space, out=out, sampler="random", n_trials=2,
                  progress=False)
    assert result.counts == {"complete": 2, "fail": 1}
    # The interrupted trial's parameters were run again, first.
    assert study_of(out).trials[1].params == first[0].params


class Killed(BaseException):
    """What a SIGKILL does to a trial, in process: it ends the run and records nothing."""


def cheap_scores(monkeypatch: pytest.MonkeyPatch, *, kill_at: int = 0) -> None:
    """Score trials by their learning rate alone, at once; the ``kill_at``-th trial dies."""
    calls = itertools.count(1)

    def score(data: object, options: dict, metric: str, report: object) -> float:
        if next(calls) == kill_at:
            raise Killed
        return -abs(math.log10(options["lr"]) + 2.0)

    monkeypatch.setattr("warmstart.tuning.study.finetune_score", score)


def check_no_trial_repeated(out: Path, n_trials: int, killed: list[int]) -> None:
    """``n_trials`` complete trials, all with other parameters, but the retries of ``killed``."""
    trials = study_of(out).trials
    states = {t.number: t.state for t in trials}
    assert optuna.trial.TrialState.RUNNING not in states.values(), states
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == n_trials, states
    assert len({tuple(sorted(t.params.items())) for t in complete}) == n_trials
    for number in killed:
        assert states[number] == optuna.trial.TrialState.FAIL
        retries = [t for t in complete if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1 and retries[0].params == trials[number].params


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_study_killed_and_resumed_twice_never_repeats_a_trial(
        headlines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampler: str) -> None:
    """Issue 22: a resumed study drew trial 0's parameters again (same seed, same stream).

    20 trials of a seeded sampler, its worker killed mid-trial twice, the study resumed each
    time: 20 different complete trials, and each killed one failed and run again once.
    """
    space = space_file(tmp_path, SPACE + '\n[space.dropout]\ntype = "float"\nlow = 0.0\n'
                                         'high = 0.5\n')
    out = tmp_path / "out"
    killed: list[int] = []
    for kill_at in (8, 6, 0):  # the 8th trial of the first run, the 6th of the second
        cheap_scores(monkeypatch, kill_at=kill_at)
        with contextlib.ExitStack() as stack:
            if killed:  # the last run's trial is failed and queued again, with a warning
                stack.enter_context(pytest.warns(
                    UserWarning, match=rf"trial {killed[-1]} was running in \S+:{os.getpid()}, "
                                       "which died .* its parameters are queued again"))
            if kill_at:
                stack.enter_context(pytest.raises(Killed))
            result = tune(headlines, space_file=space, out=out, sampler=sampler, n_trials=20,
                          progress=False)
        if kill_at:
            running = [t.number for t in study_of(out).trials
                       if t.state == optuna.trial.TrialState.RUNNING]
            assert len(running) == 1
            killed.append(running[0])
    assert result.counts == {"complete": 20, "fail": 2}
    check_no_trial_repeated(out, 20, killed)


def test_a_tune_process_killed_mid_trial_is_resumed_without_repeats(
        headlines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ``kill -9`` of ``warmstart tune`` in its second trial, then the same study.

    The killed trial is failed (with a warning) and run again by the next run at once, not
    left RUNNING until its heartbeats are missed; the next run draws no earlier trial again.
    """
    space = space_file(tmp_path, SPACE.replace("epochs = 6", "epochs = 3"))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.Popen([sys.executable, "-m", "warmstart", "tune", str(headlines),
                             "--space", str(space), "--out", str(out), "--n-trials", "20",
                             "--sampler", "random", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running: list[optuna.trial.FrozenTrial] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not running:  # kill in the second trial
            time.sleep(0.2)
            assert proc.poll() is None, proc.communicate()[1]
            try:
                now = (retry_schema_race(lambda: study_of(out)).trials
                       if (out / "study.db").exists() else [])
            except KeyError:  # the database is there, the study not yet
                continue
            if any(t.state == optuna.trial.TrialState.COMPLETE for t in now):
                running = [t for t in now if t.state == optuna.trial.TrialState.RUNNING
                           and "worker" in t.user_attrs]
        assert running, "the tune process never got to its second trial"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert running[0].user_attrs["worker"].endswith(f":{proc.pid}")
    assert [t.state for t in study_of(out).trials
            if t.number == running[0].number] == [optuna.trial.TrialState.RUNNING]

    cheap_scores(monkeypatch)  # the rest of the study, at once
    with pytest.warns(UserWarning, match=rf"trial {running[0].number} was running in "
                                         rf"\S+:{proc.pid}, which died"):
        result = tune(headlines, space_file=space, out=out, sampler="random", n_trials=20,
                      progress=False)
    assert result.counts == {"complete": 20, "fail": 1}
    check_no_trial_repeated(out, 20, [running[0].number])


def test_a_second_process_creating_the_same_new_database_retries() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    calls = []

    def racing() -> str:  # loses the schema race once, as Optuna's RDBStorage does
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO alembic_version", {},
                                 Exception("UNIQUE constraint failed: alembic_version.version_num"))
        return "storage"

    assert retry_schema_race(racing) == "storage" and len(calls) == 2

    def down() -> str:  # any other failure is not retried
        calls.append(1)
        raise OperationalError("connect", {}, Exception("connection refused"))

    calls.clear()
    with pytest.raises(OperationalError):
        retry_schema_race(down)
    assert len(calls) == 1


def test_cli_tune_prints_the_best_trials_and_rejects_bad_spaces(headlines: Path,
                                                                tmp_path: Path) -> None:
    space = space_file(tmp_path, SPACE)
    proc = ok(run("tune", headlines, "--space", space, "--out", tmp_path / "out",
                  "--n-trials", "2", "--sampler", "random", "--quiet", cwd=tmp_path))
    assert "trials: 2 complete" in proc.stdout and "best.toml" in proc.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(SPACE.replace('low = 1e-4', 'low = 1.0'), encoding="utf-8")
    err = user_error(run("tune", headlines, "--space", bad, "--out", tmp_path / "bad",
                         cwd=tmp_path))
    assert f"--space {bad}: [space.lr]: low 1.0 is above high 0.3" in err
    err = user_error(run("tune", headlines, "--space", space, "--out", tmp_path / "bad",
                         "--sampler", "grid", cwd=tmp_path))
    assert "--sampler grid: use one of random, tpe, gp" in err
    fixed_bad = tmp_path / "fixed.toml"
    fixed_bad.write_text(SPACE.replace("dim = 32", "dims = 32"), encoding="utf-8")
    err = user_error(run("tune", headlines, "--space", fixed_bad, "--out", tmp_path / "bad",
                         cwd=tmp_path))
    assert "unknown option(s) dims" in err


# -- several workers on a real database -------------------------------------------------------


def test_two_workers_share_a_postgres_study_and_one_killed_mid_trial_loses_nothing(
        headlines: Path, tmp_path: Path) -> None:
    """Two ``warmstart tune`` processes on one PostgreSQL study; one is SIGKILLed mid-trial.

    ``make test`` starts the server (tests/postgres_server.sh) and passes its URL in
    WARMSTART_TEST_POSTGRES; CI sets CI=1, where a missing server is a failure.
    """
    url = os.environ.get("WARMSTART_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI without WARMSTART_TEST_POSTGRES: make test starts the server")
        pytest.skip("no PostgreSQL server (make test starts one: WARMSTART_TEST_POSTGRES)")
    n_trials = 6
    space = space_file(tmp_path, SPACE.replace("epochs = 6", "epochs = 15"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}

    def worker(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "warmstart", "tune", str(headlines), "--space", str(space),
             "--out", str(tmp_path / name), "--storage", url, "--study", "shared",
             "--n-trials", str(n_trials), "--sampler", "random", "--heartbeat", "1",
             "--quiet"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # One storage for all the polling, holding no connection between polls: a storage per
    # poll keeps a pooled connection each until collected, and the server allows 50.
    from sqlalchemy.pool import NullPool

    reader = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})

    def trials() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="shared", storage=reader).get_trials(deepcopy=False)

    first, second = worker("first"), worker("second")
    try:
        # Kill the first worker once both have finished a trial and it is in its next one.
        deadline = time.monotonic() + 240
        killed: list[optuna.trial.FrozenTrial] = []
        while time.monotonic() < deadline and not killed:
            time.sleep(0.5)
            try:
                now = trials()
            except KeyError:  # the study is not created yet
                continue
            done = {t.user_attrs.get("worker", "").split(":")[-1] for t in now
                    if t.state == optuna.trial.TrialState.COMPLETE}
            running = [t for t in now if t.state == optuna.trial.TrialState.RUNNING
                       and t.user_attrs.get("worker", "").endswith(f":{first.pid}")]
            if {str(first.pid), str(second.pid)} <= done and running:
                first.send_signal(signal.SIGKILL)
                killed = running
        assert killed, "the first worker never got to a second trial"
        first.wait(timeout=30)
        _, err = second.communicate(timeout=300)
    finally:
        first.kill()
        second.kill()
    assert second.returncode == 0, err

    final = trials()
    by_state: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in final:
        by_state.setdefault(t.state.name, []).append(t)
    complete = by_state["COMPLETE"]
    # The requested number of results, no more (none counted twice) and no fewer.
    assert len(complete) == n_trials, {k: len(v) for k, v in by_state.items()}
    assert len({t.params["lr"] for t in complete}) == n_trials
    # The killed trial was failed for its silence and its parameters run again to the end.
    dead = next(t for t in final if t.number == killed[0].number)
    assert dead.state == optuna.trial.TrialState.FAIL
    retried = [t for t in complete if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].params == dead.params
    assert retried[0].user_attrs["worker"].endswith(f":{second.pid}")
    assert "RUNNING" not in by_state
