"""What a CI run (``CI=1``) refuses to skip: the real data must be there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_ci_without_the_shared_data_fails_and_says_where_it_goes(tmp_path: Path) -> None:
    missing = tmp_path / "no-data"
    env = {**os.environ, "CI": "1", "WARMSTART_SHARED_DATA": str(missing)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only",
                          str(TESTS / "test_corpus.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert f"shared data folder {missing} not found" in out and "WARMSTART_SHARED_DATA" in out
    # Outside CI the same run collects (and the tests needing the data skip).
    env["CI"] = ""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only",
                          str(TESTS / "test_corpus.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
