"""One way to configure: settings dataclasses, TOML files, and the CLI options made from them.

Every settings dataclass documents its fields with ``opt(default, "help")``. The CLI turns
those fields into options of the same names (``min_count`` -> ``--min-count``), and
``--config FILE.toml`` supplies values that explicit options override, so the CLI, the Python
keyword arguments and the config files cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from warmstart.errors import WarmstartError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def opt(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with a default and the help text its CLI option shows."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def read_toml(path: str | Path, *, section: str | None = None) -> dict[str, Any]:
    """Read a TOML config file; with ``section``, the table of that name if present.

    Keys may be written with dashes or underscores (``min-count`` or ``min_count``).
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarmstartError(f"--config {p}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WarmstartError(f"--config {p}: not valid TOML ({e})") from None
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return {k.replace("-", "_"): v for k, v in data.items() if not isinstance(v, dict)}


def check_keys(cls: type, values: dict[str, Any], *, where: str) -> None:
    """Raise naming ``where`` if ``values`` has keys that are not fields of ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise WarmstartError(
            f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
