"""Artifacts: the folders every command reads and writes.

An artifact folder holds ``warmstart.json`` (format version, kind, resolved config, parent,
data provenance) beside its tensors (``model.safetensors``) and whatever else its kind needs.
Folders are built under a temporary name and renamed into place, so an interrupted run never
leaves a half-written artifact where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from warmstart.errors import WarmstartError

FORMAT = "warmstart/1"
META_FILE = "warmstart.json"
CHECKPOINT_DIR = "checkpoint"  # an unfinished run's resumable state, inside its artifact folder


def _version() -> str:
    from warmstart import __version__

    return __version__


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename."""
    write_bytes_atomic(path, (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode())


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` (by a rename) only once it is complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` where ``final`` is, replacing any folder there by renames."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(new, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, final)


def check_replaceable(out: Path) -> None:
    """Refuse an ``out`` folder that is neither new, empty, an artifact nor an unfinished run.

    An unfinished run leaves only its ``checkpoint/`` there (and ``checkpoint-<phase>/`` for
    the earlier phases of a run in several), which the finished artifact replaces.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise WarmstartError(f"--out {out}: exists and is not a folder; choose another path")
    others = [p for p in out.iterdir()
              if p.name != CHECKPOINT_DIR and not p.name.startswith(f"{CHECKPOINT_DIR}-")
              and not p.name.startswith(f".{CHECKPOINT_DIR}.")]
    if others and not (out / META_FILE).exists():
        raise WarmstartError(
            f"--out {out}: folder exists, is not empty and is not a warmstart artifact; "
            "choose a new or empty folder"
        )


@contextlib.contextmanager
def staged_dir(final: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final`` by renames.

    On failure the temporary folder is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent))
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def building(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir``.

    An existing ``out_dir`` is replaced only if it is an artifact (has ``warmstart.json``) or
    empty, so a typo cannot wipe an unrelated folder.
    """
    out = Path(out_dir)
    check_replaceable(out)
    with staged_dir(out, suffix=".building") as tmp:
        yield tmp


def write_meta(
    folder: str | os.PathLike[str],
    *,
    kind: str,
    config: dict[str, Any],
    parent: str | None = None,
    data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``warmstart.json`` describing an artifact and return what was written."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "config": config,
        "parent": parent,
        "data": data,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "warmstart_version": _version(),
    }
    if extra:
        meta.update(extra)
    write_json_atomic(Path(folder) / META_FILE, meta)
    return meta


def read_meta(folder: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Read an artifact's ``warmstart.json``, checking its format and (optionally) its kind."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.exists():
        raise WarmstartError(f"{folder}: no such artifact folder")
    if not path.exists():
        raise WarmstartError(
            f"{folder}: not a warmstart artifact (no {META_FILE}); "
            "foreign formats are read with an import command"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{path}: corrupt artifact metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WarmstartError(
            f"{path}: unsupported artifact format {meta.get('format')!r} "
            f"(this warmstart reads {FORMAT!r})"
        )
    if kind is not None and meta.get("kind") != kind:
        raise WarmstartError(
            f"{folder}: is a {meta.get('kind')!r} artifact, but a {kind!r} artifact is needed here"
        )
    return meta


def file_fingerprint(paths: list[str]) -> str:
    """A cheap content fingerprint of input files: names, sizes and modification times."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]
