"""What every benchmark result records about how it was made: commit, settings, machine, date.

    from provenance import stamp, same_run
    entry = {"accuracy": 81.2, **stamp(settings)}
    if same_run(old_entry, settings): ...   # reuse it only if made on this commit, CPU, settings
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


#: The paths whose changes can change a result; a commit that touches only docs does not.
CODE = ["src", "benchmarks", "pyproject.toml", "setup.py"]


def commit() -> str:
    """The last commit that changed the code (``CODE``), with ``+dirty.HASH`` when the code
    has uncommitted changes: results of one code state compare, whatever docs changed since."""
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h", "--", *CODE], cwd=ROOT,
                              text=True, capture_output=True, check=True).stdout.strip()
        # Uncommitted changes, new files included: a hash of them tells one such state from
        # another, so results of code that was never committed are not mixed either.
        diff = subprocess.run(["git", "diff", "HEAD", "--", *CODE], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout
        new = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--", *CODE],
                             cwd=ROOT, text=True, capture_output=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not diff and not new:
        return head or "unknown"
    h = hashlib.sha256(diff.encode())
    for name in sorted(new):
        h.update(name.encode() + (ROOT / name).read_bytes())
    return f"{head or 'unknown'}+dirty.{h.hexdigest()[:8]}"


def machine() -> dict[str, Any]:
    """The CPU model, the instruction sets that change speed (bf16, AMX), cores."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lines = text.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 "") or platform.processor() or platform.machine()
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores,
            "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]}


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
    """Whether ``entry`` was made on this commit and CPU with these settings (reusable)."""
    m = machine()
    return (entry.get("commit") == commit() and entry.get("cpu") == m["cpu"]
            and entry.get("settings_hash") == settings_hash(settings))
