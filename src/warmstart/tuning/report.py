"""What a study leaves in its folder (the best config, the trials, a summary and plots) and
what :func:`~warmstart.tuning.study.tune` returns (a :class:`TuneResult`).

* ``best.toml``: the fixed and the best trial's options as a ``[finetune]`` (or ``[vectors]``)
  table, so ``warmstart finetune TRAIN --config best.toml`` re-runs the best trial;
* ``trials.csv``: one row per trial (number, state, value, seconds, parameters, error);
* ``summary.json``: the best trial, trials by state, time spent in pruned and failed trials;
* ``history.png``, ``importances.png``, ``parallel.png``: Optuna's plots of the optimisation
  history, the parameter importances (fANOVA) and the parallel coordinates (each only when the
  study has enough complete trials for it).
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from warmstart.artifact import write_bytes_atomic, write_json_atomic


@dataclass
class TuneResult:
    """What a study found (over all its trials, from every worker and run)."""

    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    counts: dict[str, int]
    out: Path
    table: str = ""
    interrupted: bool = False

    @property
    def summary(self) -> dict[str, Any]:
        """The result as a JSON-ready dict: best value, parameters and trial, trial counts."""
        return {"best_value": self.best_value, "best_params": self.best_params,
                "best_trial": self.best_trial, "trials": self.counts, "out": str(self.out)}


def best_config_text(table: str, options: dict[str, Any], header: list[str]) -> str:
    """A TOML file with ``options`` in ``[table]``, after ``#`` comment lines ``header``."""
    comments = "".join(f"# {h}\n" for h in header)
    return comments + tomli_w.dumps({table: dict(sorted(options.items()))})


def write_results(study: Any, cfg: Any, fixed: dict[str, Any], out: Path, *,
                  interrupted: bool = False) -> TuneResult:
    """Write the study's results into ``out``; return its :class:`TuneResult`."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    if best is not None:
        seed = int(fixed.get("seed", 1 if cfg.target == "vectors" else 0))
        text = best_config_text(cfg.target, {**fixed, **best.params, "seed": seed}, [
            f"warmstart tune: study {cfg.study!r}, trial {best.number}, {cfg.metric} "
            f"{best.value:.6g}" + (f" (mean of {cfg.repeats} seeds from {seed})"
                                   if cfg.repeats > 1 else ""),
            f"re-run: warmstart {cfg.target} ... --config best.toml",
        ])
        write_bytes_atomic(out / "best.toml", text.encode())
    write_bytes_atomic(out / "trials.csv", _trials_csv(trials).encode())
    seconds = {state: round(sum(_seconds(t) for t in trials if t.state.name.lower() == state), 1)
               for state in ("complete", "pruned", "fail")}
    summary = {
        "study": cfg.study, "target": cfg.target, "metric": cfg.metric, "sampler": cfg.sampler,
        "pruner": cfg.pruner, "trials": counts, "seconds_by_state": seconds,
        "best": None if best is None else {"trial": best.number, "value": best.value,
                                           "params": best.params},
        "interrupted": interrupted,
    }
    write_json_atomic(out / "summary.json", summary)
    _plots(study, out, cfg.metric)
    return TuneResult(best_value=None if best is None else float(best.value),
                      best_params={} if best is None else dict(best.params),
                      best_trial=None if best is None else best.number, counts=counts, out=out,
                      table=format_trials(study, counts), interrupted=interrupted)


def format_trials(study: Any, counts: dict[str, int], *, top: int = 10) -> str:
    """A table of the ``top`` trials by score, then a line of the trial ``counts`` by state."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE),
                      key=lambda t: (-t.value, t.number))[:top]
    names = sorted({k for t in complete for k in t.params})
    rows = [["trial", "value", "seconds", *names]]
    for t in complete:
        rows.append([str(t.number), f"{t.value:.4f}", f"{_seconds(t):.0f}",
                     *(_short(t.params.get(n, "")) for n in names)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _seconds(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def _trials_csv(trials: list[Any]) -> str:
    names = sorted({k for t in trials for k in t.params})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "value", "seconds", *names, "error"])
    for t in trials:
        w.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value,
                    round(_seconds(t), 2), *(t.params.get(n, "") for n in names),
                    t.user_attrs.get("error", "")])
    return buf.getvalue()


def _plots(study: Any, out: Path, metric: str) -> list[Path]:
    """The plots the study has enough trials for (each is skipped, not an error, otherwise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    made = []
    kinds: list[tuple[str, Any, int]] = [("history", vis.plot_optimization_history, 1),
             ("importances", vis.plot_param_importances, 2),
             ("parallel", vis.plot_parallel_coordinate, 2)]
    for name, plot, needs in kinds:
        if len(complete) < needs:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = plot(study, target_name=metric)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances of parameters that never varied
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        write_bytes_atomic(out / f"{name}.png", buf.getvalue())
        made.append(out / f"{name}.png")
    return made
