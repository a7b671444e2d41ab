"""One way to configure: settings dataclasses, TOML files, and the CLI options made from them.

Every settings dataclass documents its fields with ``opt(default, "help")``. The CLI turns
those fields into options of the same names (``min_count`` -> ``--min-count``), and
``--config FILE.toml`` supplies values that explicit options override, so the CLI, the Python
keyword arguments and the config files cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from warmstart.errors import WarmstartError, with_article

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def opt(default: Any, help: str, *, at_least: float | None = None, above: float | None = None,
        at_most: float | None = None, below: float | None = None, **metadata: Any) -> Any:
    """A dataclass field with a default, the help text its CLI option shows and, for numbers,
    the range a value must lie in (``at_least``/``above`` below, ``at_most``/``below`` above).
    """
    bounds = {k: v for k, v in (("at_least", at_least), ("above", above), ("at_most", at_most),
                                ("below", below)) if v is not None}
    return dataclasses.field(default=default, metadata={"help": help, **bounds, **metadata})


def option_name(field: str) -> str:
    """The CLI option of a settings field: ``min_count`` -> ``--min-count``."""
    return "--" + field.replace("_", "-")


_INT_LIMIT = 2**63  # a C int64

_BOUNDS = {"at_least": (lambda v, b: v >= b, ">="), "above": (lambda v, b: v > b, ">"),
           "at_most": (lambda v, b: v <= b, "<="), "below": (lambda v, b: v < b, "<")}


def _shown(number: float) -> str:
    """A number as a user would write it: 16777216, 0.5, 1e-05."""
    return f"{number:g}" if isinstance(number, float) else str(number)


def check_range(f: dataclasses.Field[Any], value: float) -> None:
    """Refuse a number outside the range declared by ``f``'s :func:`opt` bounds, naming its option."""
    if not math.isfinite(value):
        raise WarmstartError(f"{option_name(f.name)} {value}: must be a finite number")
    for key, (inside, _) in _BOUNDS.items():
        bound = f.metadata.get(key)
        if bound is not None and not inside(value, bound):
            low, high = f.metadata.get("at_least"), f.metadata.get("at_most")
            wanted = (f"between {_shown(low)} and {_shown(high)}"
                      if low is not None and high is not None
                      else " and ".join(f"{sign} {_shown(f.metadata[k])}"
                                        for k, (_, sign) in _BOUNDS.items()
                                        if f.metadata.get(k) is not None))
            raise WarmstartError(f"{option_name(f.name)} {_shown(value)}: must be {wanted}")
    if isinstance(value, int) and abs(value) >= _INT_LIMIT:  # beyond what torch, numpy, C take
        raise WarmstartError(f"{option_name(f.name)} {value}: too large (the limit is "
                             f"{_INT_LIMIT - 1:,})")


def load_toml(path: str | Path, *, option: str = "--config") -> dict[str, Any]:
    """The whole TOML file at ``path``; a missing or malformed file is an error naming
    ``option`` and the file."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarmstartError(f"{option} {p}: no such file") from None
    except OSError as e:  # a folder, or a file we may not read
        raise WarmstartError(f"{option} {p}: cannot read the file ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{option} {p}: not valid TOML ({e})") from None
    except RecursionError:
        raise WarmstartError(f"{option} {p}: not valid TOML (arrays or tables nested too "
                             "deep to read)") from None


#: What ``--config ARTIFACT/warmstart.json`` reads, by the command's section: the kinds of
#: artifact the command makes, and the tables of the artifact's saved config that hold the
#: command's settings (none: they are the config's top level). Other tables (a model's shape,
#: what ``--recipe auto`` chose) are results, not settings.
ARTIFACT_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vectors": (("vectors",), ()),
    "pretrain": (("encoder", "decoder"), ("pretrain", "objective", "train")),
    "finetune": (("classifier",), ("data", "finetune", "train", "few_labels", "recipe")),
}


def read_config(path: str | Path, *, section: str) -> dict[str, Any]:
    """The settings in the ``--config`` file ``path`` of the command whose table is ``section``.

    A TOML file gives its ``[section]`` table, or its top level (see :func:`read_toml`). An
    artifact's ``warmstart.json`` gives the settings it was made with, so that
    ``--config ARTIFACT/warmstart.json`` re-runs them; an artifact of a kind the command does
    not make is an error.
    """
    p = Path(path)
    if p.suffix != ".json":
        return read_toml(p, section=section)
    from warmstart.artifact import META_FILE, read_meta

    if p.name != META_FILE:
        raise WarmstartError(f"--config {p}: give a TOML file or an artifact's {META_FILE}")
    if not p.is_file():
        raise WarmstartError(f"--config {p}: no such file")
    meta = read_meta(p.parent)
    kinds, tables = ARTIFACT_SETTINGS.get(section, ((), ()))
    if meta["kind"] not in kinds:
        raise WarmstartError(
            f"--config {p}: the settings of {with_article(repr(meta['kind']))} artifact; "
            f"`{section}` re-runs those of {' or '.join(with_article(repr(k)) for k in kinds)} "
            "artifact"
        )
    config = meta["config"]
    values = {k: v for k, v in config.items() if not isinstance(v, dict)} if not tables else {}
    for table in tables:
        part = config.get(table, {})
        if not isinstance(part, dict):
            raise WarmstartError(f"--config {p}: corrupt artifact metadata ({table!r} is not "
                                 "an object); re-create the artifact")
        values.update(part)
    return values


def read_toml(path: str | Path, *, section: str | None = None) -> dict[str, Any]:
    """Read a TOML config file; with ``section``, the table of that name if present.

    Keys may be written with dashes or underscores (``min-count`` or ``min_count``).
    """
    data = load_toml(path)
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return {k.replace("-", "_"): v for k, v in data.items() if not isinstance(v, dict)}


#: --precision: bf16 autocast always, never, or where the hardware has native bf16 (auto).
PRECISIONS = ("auto", "bf16", "fp32")

#: The Python type of each kind of settings field (its annotation without "| None").
FIELD_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


def field_kind(f: dataclasses.Field[Any]) -> str:
    """A settings field's kind: "bool", "int", "float" or "str" (its annotation, as a string
    under ``from __future__ import annotations``, without "| None")."""
    return str(f.type).split("|")[0].strip()


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "true or false"),
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "str": ((str,), "a string"),
}


def check_settings(cls: type, values: dict[str, Any], *, where: str) -> None:
    """Check ``values`` against the fields of settings dataclass ``cls``, naming ``where``.

    Unknown keys and values of the wrong type (as TOML or Python callers can give them) raise
    :class:`WarmstartError`; integers given for float fields are converted in place.
    """
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise WarmstartError(
            f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(by_name))}"
        )
    for name, v in values.items():
        if v is None and "None" in str(by_name[name].type):
            continue
        if by_name[name].metadata.get("multiple") and isinstance(v, list | tuple):
            if not all(isinstance(x, str) for x in v):
                raise WarmstartError(f"{where}: {name} must be a string or a list of strings, "
                                     f"got {v!r}")
            v = values[name] = ",".join(v)  # several values, stored comma-separated
        kind = field_kind(by_name[name])
        types, what = _KINDS[kind]
        if isinstance(v, bool) != (kind == "bool") or not isinstance(v, types):
            raise WarmstartError(f"{where}: {name} must be {what}, got {v!r}")
        if kind == "float":
            v = values[name] = float(v)  # type: ignore[arg-type]
        if kind in ("int", "float"):
            check_range(by_name[name], v)


def split_settings(
    classes: tuple[type, ...], values: dict[str, Any], *, where: str
) -> list[dict[str, Any]]:
    """Sort ``values`` among the settings dataclasses ``classes``, checking each part.

    A command or function that takes several settings classes together accepts the union of
    their fields; a key none of them has is an error naming ``where`` and the known keys.
    Returns one dict of checked values per class, in the order of ``classes``.
    """
    names = [{f.name for f in dataclasses.fields(c)} for c in classes]
    known = set().union(*names)
    unknown = sorted(set(values) - known)
    if unknown:
        raise WarmstartError(
            f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    parts = []
    for cls, own in zip(classes, names, strict=True):
        part = {k: v for k, v in values.items() if k in own}
        check_settings(cls, part, where=where)
        parts.append(part)
    return parts
