"""A search space: which options a study varies, over which ranges, and when.

Written as TOML tables, one per option of the command being tuned::

    [space.lr]
    type = "float"
    low = 1e-4
    high = 1e-1
    log = true

    [space.penalty]
    type = "categorical"
    choices = ["l2", "l1", "elasticnet"]

    [space.l1_ratio]            # only drawn when the penalty is the elastic net
    type = "float"
    low = 0.1
    high = 0.9
    when = { penalty = "elasticnet" }

``type`` is ``float`` (``low``, ``high``, optional ``log`` and ``step``), ``int`` (the same)
or ``categorical`` (``choices``). ``when`` makes a parameter conditional: it is drawn only in
trials whose earlier parameters have the given value (or one of a list of values); otherwise
the option keeps its default. Parameters are drawn in the order they are written, so a
condition may only name a parameter above it.

    >>> space = SearchSpace.parse({"dropout": {"type": "float", "low": 0.0, "high": 0.5}},
    ...                           options={"dropout": float}, where="space.toml")
    >>> space.names
    ['dropout']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from warmstart.errors import WarmstartError

TYPES = ("float", "int", "categorical")
_WHAT = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
         "categorical": {"choices"}}


@dataclass(frozen=True)
class Param:
    """One option a study varies: its distribution and the condition it is drawn under."""

    name: str
    type: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def active(self, drawn: dict[str, Any]) -> bool:
        """Whether this parameter is drawn, given the values drawn before it."""
        return all(name in drawn and drawn[name] in values for name, values in self.when.items())

    def suggest(self, trial: Any) -> Any:
        """A value drawn by an Optuna ``trial``."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a study, in the order they are drawn."""

    params: tuple[Param, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The options of one trial: every parameter whose condition holds."""
        drawn: dict[str, Any] = {}
        for p in self.params:
            if p.active(drawn):
                drawn[p.name] = p.suggest(trial)
        return drawn

    @classmethod
    def parse(cls, tables: dict[str, Any], *, options: dict[str, type], where: str) -> SearchSpace:
        """The space described by ``tables`` (option name -> its table), checked against
        ``options`` (the tuned command's option names and types); errors name ``where``."""
        if not isinstance(tables, dict) or not tables:
            raise WarmstartError(f"{where}: the search space is empty; add a [space.OPTION] "
                                 "table for each option to tune (e.g. [space.lr])")
        params: list[Param] = []
        for raw_name, spec in tables.items():
            name = raw_name.replace("-", "_")
            here = f"{where}: [space.{raw_name}]"
            if name not in options:
                raise WarmstartError(f"{here}: unknown option {raw_name!r}; options that can be "
                                     f"tuned: {', '.join(sorted(options))}")
            if not isinstance(spec, dict):
                raise WarmstartError(f"{here}: must be a table with a type "
                                     f"({', '.join(TYPES)})")
            params.append(_param(name, dict(spec), options[name], here,
                                 {p.name: p for p in params}))
        return cls(tuple(params))


def _param(name: str, spec: dict[str, Any], kind: type, here: str,
           before: dict[str, Param]) -> Param:
    type_ = spec.pop("type", None)
    if type_ not in TYPES:
        raise WarmstartError(f"{here}: type must be one of {', '.join(TYPES)}, got {type_!r}")
    when = _condition(spec.pop("when", {}), here, before)
    unknown = set(spec) - _KEYS[type_]
    if unknown:
        raise WarmstartError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} for a "
                             f"{type_} parameter; use {', '.join(sorted(_KEYS[type_]))}")
    if type_ == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise WarmstartError(f"{here}: choices must be a non-empty list")
        for c in choices:
            if not _fits(c, kind):
                raise WarmstartError(f"{here}: choice {c!r} is not {_WHAT[kind]}, as option "
                                     f"{name} needs")
        if len(set(map(repr, choices))) != len(choices):
            raise WarmstartError(f"{here}: choices repeat a value")
        return Param(name, type_, choices=tuple(choices), when=when)
    if kind not in (int, float) or (type_ == "float" and kind is int):
        use = "int" if kind is int else "categorical"
        raise WarmstartError(f"{here}: option {name} takes {_WHAT[kind]}; use "
                             f"type = \"{use}\"")
    for key in ("low", "high"):
        if key not in spec:
            raise WarmstartError(f"{here}: {key} is missing")
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise WarmstartError(f"{here}: {key} must be a number, got {value!r}")
        if type_ == "int" and not isinstance(value, int):
            raise WarmstartError(f"{here}: {key} must be an integer for an int parameter, "
                                 f"got {value!r}")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise WarmstartError(f"{here}: low {low} is above high {high}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise WarmstartError(f"{here}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise WarmstartError(f"{here}: a log scale needs low above 0, got {low}")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
            raise WarmstartError(f"{here}: step must be a number above 0, got {step!r}")
        if log:
            raise WarmstartError(f"{here}: step and log cannot go together (Optuna's rule)")
    return Param(name, type_, low=float(low) if type_ == "float" else int(low),
                 high=float(high) if type_ == "float" else int(high), log=log,
                 step=None if step is None else float(step) if type_ == "float" else int(step),
                 when=when)


def _condition(when: Any, here: str, before: dict[str, Param]) -> dict[str, tuple[Any, ...]]:
    if not isinstance(when, dict):
        raise WarmstartError(f"{here}: when must be a table, e.g. when = {{ penalty = \"l1\" }}")
    out: dict[str, tuple[Any, ...]] = {}
    for raw, values in when.items():
        other = raw.replace("-", "_")
        if other not in before:
            raise WarmstartError(f"{here}: when names {raw!r}, which is not a parameter "
                                 "written above this one")
        values = tuple(values) if isinstance(values, list) else (values,)
        parent = before[other]
        if parent.type == "categorical":
            missing = [v for v in values if v not in parent.choices]
            if missing:
                raise WarmstartError(f"{here}: when {raw} = {missing[0]!r}, which is not one of "
                                     f"its choices {list(parent.choices)}")
        out[other] = values
    return out


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind) and not isinstance(value, bool)
