"""One `warmstart` command run in a child process, for tests/fuzz/test_fuzz_cli.py.

The child is forked from a fresh server process (multiprocessing's "forkserver", which has
imported warmstart and torch but run nothing), so a crash (a segmentation fault in a
compiled kernel), a hang (a library that never returns) or a runaway allocation ends the
child, not the test run, and no global state (torch's threads, warnings) leaks between runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import sys
import tempfile
import traceback
import warnings
from typing import Any


def run_child(argv: list[str], conn: Any, memory: int, env: dict[str, str], stdin: str) -> None:
    """Run ``warmstart ARGV`` and send ``(exit status or None, stdout, stderr, traceback)``."""
    from warmstart.cli import main

    os.environ.update(env)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + memory if hard == resource.RLIM_INFINITY else min(mapped + memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    sys.stdin = io.StringIO(stdin)
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    trace = ""
    # A relative path drawn as an option value (--out 0, --out nan) lands in a folder of the
    # child's own, removed afterwards, never in the folder the tests were started from.
    os.chdir(tempfile.mkdtemp(prefix="ws-fuzz-cwd-"))
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - any other exception is what the fuzz looks for
        trace = traceback.format_exc()
    finally:
        shutil.rmtree(os.getcwd(), ignore_errors=True)
    conn.send((code, out.getvalue(), err.getvalue(), trace))
    conn.close()
