"""Artifacts: the folders every command reads and writes.

An artifact folder holds ``warmstart.json`` (format version, kind, resolved config, parent,
data provenance) beside its tensors (``model.safetensors``) and whatever else its kind needs.
Folders are built under a temporary name and renamed into place, so an interrupted run never
leaves a half-written artifact where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from warmstart.errors import WarmstartError, with_article

FORMAT = "warmstart/1"

# The files of an artifact folder, named once for every reader and writer.
META_FILE = "warmstart.json"  # format, kind, resolved settings, parent, data provenance
WEIGHTS_FILE = "model.safetensors"  # the tensors
TOKENIZER_FILE = "tokenizer.json"  # a subword tokenizer (Hugging Face tokenizers)
VOCAB_FILE = "vocab.json"  # the words of word-level models
METRICS_FILE = "metrics.jsonl"  # what training logged, one JSON object per line
CHECKPOINT_DIR = "checkpoint"  # an unfinished run's resumable state, inside its artifact folder
#: The kind of an ONNX export's folder (``warmstart model export --format onnx``).
ONNX_KIND = "onnx"


def _version() -> str:
    from warmstart import __version__

    return __version__


def append_metrics(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` to the metrics log ``path`` (made if missing), one JSON object per
    line, flushed to disk before returning so that a crash loses no logged line."""
    with open(path, "a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of the metrics log ``path``, in order (none if there is no such file)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


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
        _readable_mode(tmp, folder=False)
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
    if out.name in ("", ".", ".."):  # Path("") is "."; the folder itself cannot be renamed
        raise WarmstartError(f"--out {str(out)!r}: give the path of a new folder, e.g. runs/model")
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


def check_out(out: Path, *, option: str = "--out") -> None:
    """Before any work: ``out`` is new, empty, an artifact or an unfinished run, and writable.

    Writability is tried, not guessed from permission bits: a folder is created and removed
    where the artifact will be staged (beside ``out``) and, if ``out`` exists, inside it
    (checkpoints go there). Folders made on the way to ``out`` are removed again, so a refused
    run leaves nothing behind.
    """
    check_replaceable(out)
    missing = [p for p in [out.parent, *out.parent.parents] if not p.exists()][::-1]
    try:
        for folder in missing:
            folder.mkdir()
        for where in [out.parent, out] if out.is_dir() else [out.parent]:
            os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=where))
    except OSError as e:
        raise WarmstartError(
            f"{option} {out}: cannot write there ({e.strerror or e}); choose a folder you can write to"
        ) from None
    finally:
        for folder in reversed(missing):
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_room(out: Path, n_bytes: int, *, what: str, option: str = "--out") -> None:
    """Refuse to start when the disk under ``out`` has less free space than ``n_bytes``
    (an estimate of ``what`` will be written: the artifact and its checkpoints)."""
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    free = shutil.disk_usage(existing).free
    if free < n_bytes:
        raise WarmstartError(
            f"{option} {out}: {free / 2**20:,.0f} MiB free on its disk, but {what} need about "
            f"{n_bytes / 2**20:,.0f} MiB; free some space or choose another disk"
        )


def _readable_mode(path: str | os.PathLike[str], *, folder: bool) -> None:
    """Give a file or folder the mode a plain ``open`` or ``mkdir`` would under the process's
    umask. mkstemp/mkdtemp make 0600/0700 and safetensors writes 0600, which would keep a
    colleague or a serving process under another user from reading a model."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def _readable_tree(folder: Path) -> None:
    """:func:`_readable_mode` for ``folder`` and everything in it."""
    _readable_mode(folder, folder=True)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            _readable_mode(os.path.join(root, name), folder=True)
        for name in files:
            _readable_mode(os.path.join(root, name), folder=False)


@contextlib.contextmanager
def staged_dir(final: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final`` by renames.

    On failure the temporary folder is removed and ``final`` is left as it was.
    """
    made = [p for p in [final.parent, *final.parent.parents] if not p.exists()]
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent))
    except OSError as e:
        raise WarmstartError(
            f"{final}: cannot write there ({e.strerror or e}); choose a folder you can write to"
        ) from None
    try:
        yield tmp
        _readable_tree(tmp)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:  # the folders made on the way, deepest first, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def building(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir``.

    An existing ``out_dir`` is replaced only if it is an artifact (has ``warmstart.json``) or
    empty, so a typo cannot wipe an unrelated folder.
    """
    out = Path(out_dir)
    check_out(out)
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


#: The fields of ``warmstart.json`` every reader relies on, and the JSON types they may hold
#: (``parent`` and ``data`` may also be absent).
_META_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,), "config": (dict,), "parent": (str, type(None)), "data": (dict, type(None)),
}
_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "a number",
               float: "a number", bool: "true or false", type(None): "null"}


def is_onnx_folder(path: str | os.PathLike[str]) -> bool:
    """Whether folder ``path`` is an ONNX export (``warmstart.json`` of kind ``onnx``)."""
    folder = Path(path)
    return (folder / META_FILE).is_file() and read_meta(folder).get("kind") == ONNX_KIND


def folder_kind(folder: str | os.PathLike[str]) -> str:
    """What folder ``folder`` holds: its artifact's kind, or ``"encoder"`` for a folder without
    ``warmstart.json`` (a Hugging Face or sentence-transformers model)."""
    return str(read_meta(folder)["kind"]) if (Path(folder) / META_FILE).exists() else "encoder"


def read_meta(folder: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Read an artifact's ``warmstart.json``, checking its format and (optionally) its kind.

    What comes back has the shape every reader relies on: ``kind`` a string, ``config`` an
    object, ``parent`` a string or null and ``data`` an object or null; valid JSON of any
    other shape is a corrupt artifact (a WarmstartError naming the file).
    """
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
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON or UTF-8
        raise WarmstartError(f"{path}: corrupt artifact metadata ({e}); re-create the artifact") from None
    if not isinstance(meta, dict):
        raise WarmstartError(
            f"{path}: corrupt artifact metadata (the file holds {_JSON_NAMES.get(type(meta))}, "
            "not an object); re-create the artifact"
        )
    if meta.get("format") != FORMAT:
        raise WarmstartError(
            f"{path}: unsupported artifact format {repr(meta.get('format'))[:60]} "
            f"(this warmstart reads {FORMAT!r})"
        )
    for name, types in _META_FIELDS.items():
        if not isinstance(meta.get(name), types):  # a missing kind or config is None
            raise WarmstartError(
                f"{path}: corrupt artifact metadata ({name!r} is "
                f"{_JSON_NAMES.get(type(meta.get(name))) if name in meta else 'missing'}, not "
                f"{' or '.join(_JSON_NAMES[t] for t in types)}); re-create the artifact"
            )
    if kind is not None and meta.get("kind") != kind:
        raise WarmstartError(
            f"{folder}: is {with_article(repr(meta.get('kind')))} artifact, but "
            f"{with_article(repr(kind))} artifact is needed here"
        )
    return meta


def file_fingerprint(paths: list[str]) -> str:
    """A content fingerprint of input files: their sizes and contents, in the order of their
    sorted paths. A file re-created with the same content (a new modification time) keeps its
    fingerprint; one changed byte changes it."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = os.stat(p)
        h.update(f"{st.st_size}\0{content_hash(p)}\n".encode())
    return h.hexdigest()[:16]


def content_hash(path: str | os.PathLike[str]) -> str:
    """The sha256 of the file at ``path``, read once per process for each (path, size,
    modification time, inode): a run asks for its corpus's fingerprint several times."""
    st = os.stat(path)
    return _hash_file(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=4096)
def _hash_file(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """The sha256 of ``path``; the other arguments only key the cache."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
