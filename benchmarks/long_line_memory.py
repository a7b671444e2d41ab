"""Peak memory on a corpus that is one long line, against the same text one review per line.

    python benchmarks/long_line_memory.py                  # 50 MB, IMDB unlabeled reviews
    python benchmarks/long_line_memory.py --mb 5 --runs vectors

Setting (issue 22): the first ``--mb`` megabytes of IMDB's unlabeled reviews
(``en/imdb/unsup.txt.gz`` in the shared data folder: ``--data`` or ``$WARMSTART_SHARED_DATA``),
written to a temporary folder twice: one review per line (the anchor), and all reviews joined
by spaces on ONE line, as a dump, a book or a scraped page arrives. Each command runs in its
own process on both files:

* ``vectors``: ``warmstart vectors train`` (skip-gram, 1 epoch, 2 threads);
* ``pretrain``: ``warmstart pretrain`` (tiny MLM, 8k-word tokenizer trained on the corpus,
  5 steps, a fresh shard cache);
* ``pretrain-tok``: the same with ``--tokenizer`` given (the one the lines run trained), so
  only the shard builder reads the corpus.

Each child reports its own peak resident memory (``VmHWM`` of ``/proc/self/status``, read at
exit: the parent's memory is not in it). The table gives the peak of each run in MB (an
absolute figure, so it names the machine) and the ratio one-line / lines (target: at most
1.5). ``--src`` runs another checkout's ``src`` (e.g. a clean clone of an older commit) with
this script's settings, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from provenance import stamp

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("vectors", "pretrain", "pretrain-tok")

# Runs the CLI and writes this process's peak RSS (kB) to $PEAK_FILE when it exits.
_CHILD = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(ln.split()[1] for ln in status if ln.startswith("VmHWM:")))
atexit.register(_peak)
sys.argv = ["warmstart", *sys.argv[1:]]
runpy.run_module("warmstart", run_name="__main__")
"""


def make_corpora(data: Path, mb: float, folder: Path) -> dict[str, Path]:
    """Write the first ``mb`` MB of reviews as ``lines.txt`` and as ``one-line.txt``."""
    budget = int(mb * 1_000_000)
    lines_path, one_path = folder / "lines.txt", folder / "one-line.txt"
    n = 0
    with gzip.open(data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as src, \
            open(lines_path, "w", encoding="utf-8") as lines, \
            open(one_path, "w", encoding="utf-8") as one:
        for review in src:
            review = review.strip()
            if not review:
                continue
            if n:
                one.write(" ")
            lines.write(review + "\n")
            one.write(review)
            n += len(review.encode("utf-8")) + 1
            if n >= budget:
                break
        one.write("\n")
    if n < budget:
        sys.exit(f"only {n / 1e6:.1f} MB of reviews in {data}; ask for less with --mb")
    return {"lines": lines_path, "one-line": one_path}


class ChildRun(TypedDict):
    peak_mb: float
    seconds: float
    warnings: list[str]


def run_child(args: list[str], src: Path, work: Path) -> ChildRun:
    """Run ``warmstart ARGS`` in a fresh process; return its peak RSS (MB) and wall time."""
    peak = work / "peak.kb"
    peak.unlink(missing_ok=True)
    env = {**os.environ, "PEAK_FILE": str(peak), "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, text=True,
                          capture_output=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not peak.exists():
        sys.exit(f"warmstart {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    warned = [ln for ln in done.stderr.splitlines() if ln.startswith("warning:")]
    return {"peak_mb": int(peak.read_text()) / 1024, "seconds": seconds, "warnings": warned}


def commands(run: str, corpus: Path, out: Path, cache: Path, tokenizer: Path | None) -> list[str]:
    if run == "vectors":
        return ["vectors", "train", str(corpus), "--out", str(out), "--epochs", "1",
                "--workers", "2", "--quiet"]
    args = ["pretrain", str(corpus), "--out", str(out), "--size", "tiny", "--vocab-size", "8000",
            "--max-steps", "5", "--batch-size", "8", "--eval-every", "0", "--eval-batches", "1",
            "--checkpoint-every", "0", "--device", "cpu", "--cache-dir", str(cache), "--quiet"]
    if run == "pretrain-tok":
        assert tokenizer is not None
        args += ["--tokenizer", str(tokenizer)]
    return args


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WARMSTART_SHARED_DATA", ROOT.parent / "shared" / "data")), help="shared data folder")
    p.add_argument("--mb", type=float, default=50.0, help="corpus size in MB")
    p.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    p.add_argument("--src", type=Path, default=ROOT / "src",
                   help="the src folder of the warmstart to measure (default: this checkout's)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    a = p.parse_args()

    results: dict[str, dict[str, ChildRun]] = {}
    with tempfile.TemporaryDirectory(prefix="warmstart-long-line-") as tmp:
        work = Path(tmp)
        corpora = make_corpora(a.data, a.mb, work)
        tokenizer = None
        for run in a.runs:
            if run == "pretrain-tok":
                # The tokenizer a lines run trains, so both files are encoded with the same one.
                tokenizer = work / "pretrain-lines"
                if not tokenizer.exists():
                    run_child(commands("pretrain", corpora["lines"], tokenizer,
                                       work / "cache-pretrain-lines", None), a.src, work)
            for name, corpus in corpora.items():
                out = work / f"{run}-{name}"
                r = run_child(commands(run, corpus, out, work / f"cache-{run}-{name}", tokenizer),
                              a.src, work)
                results.setdefault(run, {})[name] = r
                print(f"{run:13s} {name:9s} peak {r['peak_mb']:8.0f} MB  {r['seconds']:6.0f} s"
                      + "".join(f"\n    {w}" for w in r["warnings"]), flush=True)

    settings = {"mb": a.mb, "runs": a.runs}
    prov = stamp(settings, "tokenizers")
    src = a.src.resolve()
    if src != (ROOT / "src").resolve():  # another checkout: name its commit, not this one's
        prov["commit"] = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h"],
                                        text=True, capture_output=True).stdout.strip() or "unknown"
    print(f"\npeak RSS, {a.mb:g} MB of IMDB reviews; {prov['cpu']}, {prov['cores']} cores; "
          f"commit {prov['commit']}; {prov['date']}")
    print(f"{'run':13s} {'lines MB':>9s} {'one-line MB':>12s} {'ratio':>6s}")
    for run, by_corpus in results.items():
        ratio = by_corpus["one-line"]["peak_mb"] / by_corpus["lines"]["peak_mb"]
        print(f"{run:13s} {by_corpus['lines']['peak_mb']:9.0f} "
              f"{by_corpus['one-line']['peak_mb']:12.0f} "
              f"{ratio:6.2f}")
    if a.json:
        a.json.write_text(json.dumps({"results": results, **prov}, indent=1) + "\n")


if __name__ == "__main__":
    main()
