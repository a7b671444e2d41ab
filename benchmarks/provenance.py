"""What every benchmark result records about how it was made: commit, settings, machine, date.

    from provenance import stamp, same_run
    entry = {"accuracy": 81.2, **stamp(settings)}
    if same_run(old_entry, settings): ...   # reuse it only if made on this commit, CPU, settings
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


#: The paths whose changes can change a result; a commit that touches only docs does not.
CODE = ["src", "benchmarks", "pyproject.toml", "setup.py"]


@functools.cache
def commit() -> str:
    """The last commit that changed the code (``CODE``), with ``+dirty.HASH`` when the code
    has uncommitted changes: results of one code state compare, whatever docs changed since.

    Read once per process, at its first stamp (every script stamps as it starts): an entry
    written at the end of a long run names the code the run loaded, not a tree that moved
    while it ran."""
    from warmstart.provenance import code_commit

    return code_commit(ROOT, CODE) or "unknown"


def machine() -> dict[str, Any]:
    """The CPU model, the instruction sets that change speed (bf16, AMX), cores."""
    from warmstart.train.precision import cpu_facts

    return cpu_facts()


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in ("torch", "warmstart", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def stamp(settings: dict[str, Any], *packages: str) -> dict[str, Any]:
    """The provenance fields of one result entry."""
    m = machine()
    return {"commit": commit(), "settings_hash": settings_hash(settings), "cpu": m["cpu"],
            "isa": m["isa"], "cores": m["cores"], "versions": versions(*packages),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def same_run(entry: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Whether ``entry`` was made on this commit and machine (CPU model, instruction sets,
    cores) with these settings and the same versions of the packages it names (reusable)."""
    m = machine()
    recorded = entry.get("versions") or {}
    return (entry.get("commit") == commit() and entry.get("cpu") == m["cpu"]
            and entry.get("isa") == m["isa"] and entry.get("cores") == m["cores"]
            and entry.get("settings_hash") == settings_hash(settings)
            and bool(recorded) and versions(*recorded) == recorded)


def reusable(results: dict[str, Any], key: str, settings: dict[str, Any], *,
             reuse_any: bool = False, indent: str = "") -> bool:
    """Whether ``results[key]`` can stand instead of running ``key`` again: made on this
    commit, CPU and settings, or any earlier entry with ``reuse_any`` (said loudly). An entry
    that cannot stand is named, with where it was made, before it is run again."""
    if key not in results:
        return False
    if same_run(results[key], settings):
        return True
    if reuse_any:
        print(f"{indent}{key}: REUSED, made on {where(results[key])}, not on this commit, CPU "
              "and settings", flush=True)
        return True
    print(f"{indent}{key}: made on {where(results[key])}, with other code, CPU or settings: "
          "running it again", flush=True)
    return False


def describe(entry: dict[str, Any]) -> str:
    """One line of an entry's (or a stamp's) provenance: commit, CPU, ISA, versions, date."""
    isa = ", ".join(entry.get("isa") or []) or "none of avx2/avx512f/avx512_bf16/amx_bf16"
    versions_ = ", ".join(f"{k} {v}" for k, v in (entry.get("versions") or {}).items())
    return (f"provenance: commit {entry.get('commit', 'not recorded')}; "
            f"{entry.get('cpu', 'CPU not recorded')} ({entry.get('cores', '?')} cores; {isa}); "
            f"{versions_ or 'versions not recorded'}; settings {entry.get('settings_hash', '?')}; "
            f"{entry.get('date', 'date not recorded')}")


def where(entry: dict[str, Any]) -> str:
    """Where an earlier entry was made, for the line that says it is reused or run again."""
    if "commit" not in entry:
        return "an unrecorded commit and CPU (made before provenance was recorded)"
    return (f"commit {entry['commit']} / {entry.get('cpu')} / settings {entry.get('settings_hash')}"
            f" ({entry.get('date')})")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """``obj`` as JSON into ``path``, atomically: ``PATH.tmp`` first, then renamed over it.
    Its folder is made if missing, so a long run does not fail at its last line."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{os.fspath(path)}.tmp"
    Path(tmp).write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# Artifacts an earlier run made and a later one reuses (a pretrained model, a fine-tuned
# classifier, its checkpoints): their stamp sits beside the folder, in FOLDER.provenance.json.


def _sidecar(folder: Path) -> Path:
    return folder.with_name(folder.name + ".provenance.json")


def folder_stamp(folder: Path) -> dict[str, Any]:
    """The stamp of the run that made ``folder`` ({} if none was recorded)."""
    side = _sidecar(Path(folder))
    return json.loads(side.read_text()) if side.exists() else {}


def stamp_folder(folder: Path, settings: dict[str, Any], *packages: str) -> dict[str, Any]:
    """Record that this run (commit, CPU, settings) makes ``folder``; call it before making it."""
    entry = stamp(settings, *packages)
    write_json(_sidecar(Path(folder)), entry)
    return entry


def keep_folder(folder: Path, settings: dict[str, Any], *, reuse_any: bool = False) -> bool:
    """Whether ``folder``, made (or begun) by an earlier run, may be reused by this one.

    It may if its stamp says it was made on this commit and CPU with these settings, or, said
    loudly, if ``reuse_any``. Otherwise it is moved aside to ``FOLDER.stale-COMMIT`` (not
    deleted), so that the caller makes it again from scratch rather than resuming it.
    """
    folder = Path(folder)
    if not folder.exists():
        return False
    made = folder_stamp(folder)
    if same_run(made, settings):
        return True
    if reuse_any:
        print(f"REUSED {folder}: made on {where(made)}, not on this commit, CPU and settings "
              "(--reuse-any)", flush=True)
        return True
    aside = folder.with_name(f"{folder.name}.stale-{made.get('commit', 'unrecorded')}")
    n = 1
    while aside.exists():
        aside = folder.with_name(f"{folder.name}.stale-{made.get('commit', 'unrecorded')}-{n}")
        n += 1
    folder.rename(aside)
    side = _sidecar(folder)
    if side.exists():
        side.rename(aside.with_name(aside.name + ".provenance.json"))
    print(f"{folder}: made on {where(made)}, with other code, CPU or settings: moved to {aside}, "
          "making it again", flush=True)
    return False
