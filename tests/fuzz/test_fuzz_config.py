"""Fuzzing the TOML readers: --config files and tune's --space files.

Properties: any file, TOML or not, reads to settings or fails with a WarmstartError naming
the option (--config, --space) and the file; settings of the right names and types make the
settings objects or a WarmstartError naming an option (never a TypeError); and a search
space that parses draws values Optuna accepts, within its ranges.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from fuzzkit import (
    budget,
    maybe_mutated,
    toml_document,
    toml_scalars,
    toml_values,
    user_error,
    workdir,
)
from hypothesis import given
from hypothesis import strategies as st

from warmstart.config import field_kind, load_toml, read_toml, split_settings
from warmstart.errors import WarmstartError
from warmstart.tuning.objectives import option_types
from warmstart.tuning.space import TYPES, SearchSpace
from warmstart.tuning.study import TuneConfig, read_space_file


def command_settings() -> dict[str, tuple[type, ...]]:
    """The settings classes of each command that takes --config (its TOML section)."""
    from warmstart.pretraining import SETTINGS as PRETRAIN
    from warmstart.transfer.augment.dataset import AugmentConfig
    from warmstart.transfer.settings import SETTINGS as FINETUNE
    from warmstart.vectors.train import VectorsConfig

    return {"vectors": (VectorsConfig,), "pretrain": PRETRAIN, "finetune": FINETUNE,
            "augment": (AugmentConfig,), "tune": (TuneConfig,)}


SECTIONS = command_settings()

# -- any file --------------------------------------------------------------------------------

keys = st.sampled_from(("epochs", "min-count", "min_count", "dim", "lr", "text_field", "x",
                        "vectors", "space", "tune")) | st.text(max_size=6)


@st.composite
def toml_bytes(draw: st.DrawFn) -> bytes:
    tables = draw(st.dictionaries(st.sampled_from((*SECTIONS, "space.lr", "other")),
                                  st.dictionaries(keys, toml_values, max_size=4), max_size=3))
    top = draw(st.dictionaries(keys, toml_values, max_size=4))
    text = toml_document(tables, top)
    return draw(maybe_mutated(text.encode("utf-8")))


@given(toml_bytes() | st.binary(max_size=40), st.none() | st.sampled_from(tuple(SECTIONS)))
@budget(60)
def test_any_config_file_reads_or_fails_naming_the_file(data: bytes, section: str | None) -> None:
    with workdir() as d:
        path = d / "config.toml"
        path.write_bytes(data)
        try:
            values = read_toml(path, section=section)
        except WarmstartError as e:
            assert "--config" in user_error(e, path)
            return
        assert all(isinstance(k, str) and "-" not in k for k in values)
        assert not any(isinstance(v, dict) for v in values.values())


@pytest.mark.parametrize("content", ["a = " + "[" * 5000 + "]" * 5000,
                                     "a = " + "{b = " * 3000 + "1" + "}" * 3000])
def test_config_nested_too_deep(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WarmstartError) as e:
        load_toml(path)
    assert "--config" in user_error(e.value, path)


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError) as e:
        load_toml(tmp_path, option="--space")
    assert "--space" in user_error(e.value, tmp_path)


# -- settings of the right and the wrong types ----------------------------------------------


def values_for(kind: str) -> st.SearchStrategy[Any]:
    """Values for a settings field of ``kind``: mostly its own type (edges included)."""
    ints = st.integers(-3, 5) | st.sampled_from((0, -1, 2**31, 2**63 - 1, -(2**63)))
    floats = st.floats(-2, 2) | st.sampled_from((0.0, -0.0, 1e-300, 1e300, math.inf, -math.inf,
                                                 math.nan))
    own = {"int": ints, "float": floats | ints, "bool": st.booleans(),
           "str": st.text(max_size=8) | st.sampled_from(("", "auto", "none", "words", "l2"))}[kind]
    return own | toml_scalars


@st.composite
def settings_values(draw: st.DrawFn, classes: tuple[type, ...]) -> dict[str, Any]:
    fields = [f for cls in classes for f in dataclasses.fields(cls)]
    chosen = draw(st.lists(st.sampled_from(fields), max_size=4, unique_by=lambda f: f.name))
    values = {f.name: draw(values_for(field_kind(f))) for f in chosen}
    if draw(st.integers(0, 9)) == 0:
        values[draw(st.text(min_size=1, max_size=6))] = draw(toml_scalars)
    return values


@st.composite
def section_and_values(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    section = draw(st.sampled_from(tuple(SECTIONS)))
    return section, draw(settings_values(SECTIONS[section]))


@given(section_and_values(), st.booleans())
@budget(80)
def test_settings_make_objects_or_fail_naming_an_option(case: tuple[str, dict[str, Any]],
                                                        in_section: bool) -> None:
    section, values = case
    with workdir() as d:
        path = d / "config.toml"
        path.write_text(toml_document({section: values} if in_section else {}, None if in_section
                                      else values), encoding="utf-8")
        where = f"--config {path}"
        try:
            parts = split_settings(SECTIONS[section], read_toml(path, section=section),
                                   where=where)
            made = [cls(**part) for cls, part in zip(SECTIONS[section], parts, strict=True)]
        except WarmstartError as e:
            message = str(e)
            named = [str(path), *(f"--{k.replace('_', '-')}" for k in values)]
            assert any(n in message for n in named), f"names none of {named}: {message}"
            return
    # Accepted: every value reached its settings object as read (after the checks' conversions;
    # an empty string asks for a default, which the object fills in).
    assert sum(len(part) for part in parts) == len(values)
    for obj, part in zip(made, parts, strict=True):
        given = {k: v for k, v in part.items() if v != ""}
        assert {k: getattr(obj, k) for k in given} == given


# -- search spaces ---------------------------------------------------------------------------

SPACE_KEYS = ("type", "low", "high", "log", "step", "choices", "when")


@st.composite
def space_tables(draw: st.DrawFn, options: dict[str, type]) -> dict[str, Any]:
    """[space.OPTION] tables: real option names with plausible and implausible specs."""
    names = draw(st.lists(st.sampled_from(sorted(options)) | st.text(max_size=5), min_size=0,
                          max_size=4, unique=True))
    tables: dict[str, Any] = {}
    for name in names:
        if draw(st.integers(0, 9)) == 0:
            tables[name] = draw(toml_scalars)
            continue
        kind = options.get(name.replace("-", "_"), float)
        type_ = draw(st.sampled_from(TYPES) | toml_scalars)
        spec: dict[str, Any] = {"type": type_}
        num = st.integers(-5, 100) if kind is int else st.floats(-5, 100) | st.integers(-5, 100)
        if type_ in ("int", "float"):
            low = draw(num | toml_scalars)
            spec["low"] = low
            spec["high"] = draw(num | toml_scalars)
            if draw(st.booleans()):
                spec["log"] = draw(st.booleans() | toml_scalars)
            if draw(st.booleans()):
                spec["step"] = draw(st.sampled_from((1, 2, 0.5, 0.1, 0, -1, 1e-9)) | toml_scalars)
        elif type_ == "categorical":
            choice = {int: st.integers(-3, 3), float: st.floats(-3, 3), str: st.text(max_size=4),
                      bool: st.booleans()}[kind]
            spec["choices"] = draw(st.lists(choice | toml_scalars, max_size=4))
        if tables and draw(st.booleans()):
            other = draw(st.sampled_from(sorted(tables)))
            spec["when"] = {other: draw(toml_values)} if draw(st.integers(0, 4)) else draw(toml_values)
        for key in draw(st.lists(st.sampled_from(SPACE_KEYS), max_size=2)):
            spec[key] = draw(toml_values)
        tables[name] = spec
    return tables


@st.composite
def target_and_space(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    target = draw(st.sampled_from(("finetune", "vectors")))
    return target, draw(space_tables(option_types(target)))


optuna.logging.set_verbosity(optuna.logging.ERROR)


@given(target_and_space(), st.integers(0, 2**32 - 1))
@budget(80)
def test_search_space_parses_to_what_optuna_accepts(case: tuple[str, dict[str, Any]],
                                                    seed: int) -> None:
    target, tables = case
    options = option_types(target)
    try:
        space = SearchSpace.parse(tables, options=options, where="space.toml")
    except WarmstartError as e:
        user_error(e, "space.toml")
        return
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(3):
        trial = study.ask()
        drawn = space.suggest(trial)
        for p in space.params:
            if p.name not in drawn:
                continue
            value = drawn[p.name]
            if p.type == "categorical":
                assert value in p.choices or (isinstance(value, float) and math.isnan(value))
            else:
                assert p.low <= value <= p.high, (p, value)
                assert isinstance(value, options[p.name]) or options[p.name] is float
        study.tell(trial, 0.0)


@given(toml_bytes() | st.builds(lambda tables: toml_document({}, {"space": tables}),
                                space_tables(option_types("finetune"))).map(str.encode),
       st.sampled_from(("finetune", "vectors")))
@budget(40)
def test_any_space_file_reads_or_fails_naming_the_file(data: bytes, target: str) -> None:
    with workdir() as d:
        path = d / "space.toml"
        path.write_bytes(data)
        where = f"--space {path}"
        try:
            tables, fixed, settings = read_space_file(path, target)
            SearchSpace.parse(tables, options=option_types(target), where=where)
        except WarmstartError as e:
            assert "--space" in user_error(e, path)
