"""Which code made a result: the last commit that changed it, and whether the tree differs.

    >>> code_commit(Path("src/warmstart"))            # doctest: +SKIP
    '9a9897f'
    >>> code_commit(Path("."), ["src", "benchmarks"])  # doctest: +SKIP
    '9a9897f+dirty.3f1c2a90'

The demo's report and every benchmark result name the code this way, so that a figure made
with uncommitted changes is never mistaken for one of a commit.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path


def code_commit(root: Path, paths: Sequence[str] = (".",)) -> str:
    """The short hash of the last commit that changed ``paths`` (relative to ``root``), with
    ``+dirty.HASH`` where they have uncommitted changes, new files included (HASH tells one
    such state from another); ``""`` where git is missing, ``root`` is not in a checkout or
    the paths were never committed (an installed package inside some other checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args, "--", *paths], cwd=root, text=True, timeout=30,
                              capture_output=True, check=True).stdout

    try:
        head = git("log", "-1", "--format=%h").strip()
        if not head:
            return ""
        diff = git("diff", "HEAD")
        new = git("ls-files", "--others", "--exclude-standard").split()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not diff and not new:
        return head
    digest = hashlib.sha256(diff.encode())
    for name in sorted(new):
        digest.update(name.encode() + (root / name).read_bytes())
    return f"{head}+dirty.{digest.hexdigest()[:8]}"
