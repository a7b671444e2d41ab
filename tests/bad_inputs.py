"""Every bad input we know of, run through the real CLI: each must end as a user's error.

A case passes when the command exits with status 2, its stderr starts with ``error:`` and holds
the expected words (the file, line or option and what is wrong), there is no traceback, and the
working folder holds afterwards exactly what it held before (no partial ``--out``).

    python tests/bad_inputs.py            # the table of cases, as in the issue's closing note

``tests/test_hardening.py`` runs every case as a test. The commands run in-process (through
:func:`warmstart.cli.main`), so an exception that escapes the CLI's error handling is seen
as the traceback a user would get.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import random
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WORDS = ("the a film story actor plot scene music ending cast director script camera light "
         "long short slow quick dark bright old new good great bad awful").split()


@dataclass(frozen=True)
class Case:
    name: str
    args: Callable[[Path], list[object]]  # the command line, given the folder of inputs
    expect: str  # words the error must contain ({d} is the folder of inputs)
    stdin: str | None = None


@dataclass
class Outcome:
    case: Case
    code: object
    stderr: str
    traceback: bool
    left_behind: list[str]

    @property
    def ok(self) -> bool:
        return (self.code == 2 and self.stderr.startswith("error: ") and not self.traceback
                and self.case.expect in self.stderr and not self.left_behind)


def make_inputs(d: Path) -> None:
    """The good and bad files the cases read, and three small artifacts, in folder ``d``."""
    from warmstart.cli import main

    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) for _ in range(300)]
    (d / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = ["text\tlabel"] + [f"{line}\t{'pos' if 'good' in line else 'neg'}" for line in lines]
    (d / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (d / "one-class.tsv").write_text("text\tlabel\nfine film\tpos\ngood film\tpos\n", encoding="utf-8")
    (d / "no-label.tsv").write_text("text\tstars\nfine film\t5\n", encoding="utf-8")
    (d / "blank.txt").write_text("\n  \n\n", encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00" * 50)
    (d / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (d / "control.jsonl").write_text('{"text": "fine"}\n{"text": "tab\there"}\n', encoding="utf-8")
    (d / "no-field.jsonl").write_text('{"body": "fine"}\n', encoding="utf-8")
    (d / "no-column.csv").write_text("body\nfine film\n", encoding="utf-8")
    whole = gzip.compress("\n".join(lines).encode())
    (d / "truncated.gz").write_bytes(whole[: len(whole) // 2])
    (d / "short.vec").write_text("3 4\nfilm 0.1 0.2 0.3 0.4\nplot 0.1 0.2\n", encoding="utf-8")
    (d / "garbage.bin").write_bytes(b"2 3\nfilm \xff\xfe")
    (d / "bad.toml").write_text("[vectors]\ndim = = 3\n", encoding="utf-8")
    (d / "unknown.toml").write_text("[vectors]\ncolour = 3\n", encoding="utf-8")
    (d / "wrong-type.toml").write_text('[vectors]\ndim = "many"\n', encoding="utf-8")
    (d / "range.toml").write_text("[vectors]\nwindow = 0\n", encoding="utf-8")
    (d / "space.toml").write_text('[space.lr]\ntype = "float"\nlow = 1e-4\nhigh = 1e-2\n',
                                  encoding="utf-8")
    (d / "bad-space.toml").write_text('[space.lr]\ntype = "complex"\n', encoding="utf-8")
    (d / "a-file").write_text("not a folder\n", encoding="utf-8")
    (d / "not-artifact").mkdir()
    (d / "not-artifact" / "notes.txt").write_text("mine\n", encoding="utf-8")
    for name, meta in [("list-meta", "[1, 2]"), ("no-kind", '{"format": "warmstart/1"}'),
                       ("bad-config", '{"format": "warmstart/1", "kind": "classifier", "config": 7}'),
                       ("broken-meta", '{"format": ')]:
        (d / name).mkdir()
        (d / name / "warmstart.json").write_text(meta, encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["vectors", "train", str(d / "corpus.txt"), "--out", str(d / "vectors"), "--dim", "8",
              "--epochs", "1", "--min-count", "1", "--workers", "1", "--quiet"])
        main(["finetune", str(d / "train.tsv"), "--out", str(d / "classifier"), "--dim", "8",
              "--epochs", "1", "--quiet"])
        main(["pretrain", str(d / "corpus.txt"), "--out", str(d / "encoder"), "--size", "tiny",
              "--vocab-size", "300", "--seq-len", "32", "--batch-size", "8", "--max-steps", "1",
              "--eval-every", "0", "--threads", "1", "--cache-dir", str(d / "cache"), "--quiet"])


V = ["--dim", "8", "--epochs", "1", "--min-count", "1", "--workers", "1", "--quiet"]
P = ["--size", "tiny", "--vocab-size", "300", "--seq-len", "32", "--batch-size", "8",
     "--max-steps", "1", "--eval-every", "0", "--threads", "1", "--quiet"]
F = ["--dim", "8", "--epochs", "1", "--quiet"]


def _vectors(*args: object) -> Callable[[Path], list[object]]:
    return lambda d: ["vectors", "train", str(args[0]).format(d=d), "--out", d / "out", *V,
                      *[str(a).format(d=d) for a in args[1:]]]


def _pretrain(*args: object) -> Callable[[Path], list[object]]:
    return lambda d: ["pretrain", d / "corpus.txt", "--out", d / "out", *P, "--cache-dir", d / "cache",
                      *[str(a).format(d=d) for a in args]]


def _finetune(data: str, *args: object) -> Callable[[Path], list[object]]:
    return lambda d: ["finetune", d / data, "--out", d / "out", *F, *[str(a).format(d=d) for a in args]]


def _cmd(*args: object) -> Callable[[Path], list[object]]:
    return lambda d: [str(a).format(d=d) for a in args]


CASES = [
    # corpus files
    Case("missing corpus file", _vectors("{d}/nope.txt"), "nope.txt"),
    Case("corpus of blank lines", _vectors("{d}/blank.txt"), "blank.txt"),
    Case("binary corpus file", _vectors("{d}/binary.txt"), "binary.txt"),
    Case("invalid UTF-8 with --strict", _vectors("{d}/latin1.txt", "--strict"), "latin1.txt"),
    Case("truncated .gz corpus", _vectors("{d}/truncated.gz"), "truncated.gz"),
    Case("JSONL line with a control character", _vectors("{d}/control.jsonl"),
         "control.jsonl:2: invalid JSON (Invalid control character, column"),
    Case("JSONL without the text field", _vectors("{d}/no-field.jsonl"), "no-field.jsonl:1"),
    Case("CSV without the text column", _vectors("{d}/no-column.csv"), "no-column.csv:1"),
    # labeled files
    Case("labeled file of one class", _finetune("one-class.tsv"), "at least 2 classes"),
    Case("labeled file without a label column", _finetune("no-label.tsv"), "no-label.tsv"),
    # settings files
    Case("config: not TOML", _vectors("{d}/corpus.txt", "--config", "{d}/bad.toml"), "not valid TOML"),
    Case("config: unknown key", _vectors("{d}/corpus.txt", "--config", "{d}/unknown.toml"), "colour"),
    Case("config: wrong type", _vectors("{d}/corpus.txt", "--config", "{d}/wrong-type.toml"),
         "dim must be an integer"),
    Case("config: out of range", _vectors("{d}/corpus.txt", "--config", "{d}/range.toml"),
         "--window 0: must be >= 1"),
    Case("search space: unknown type",
         _cmd("tune", "{d}/train.tsv", "--space", "{d}/bad-space.toml", "--out", "{d}/out"), "complex"),
    Case("search space: missing", _cmd("tune", "{d}/train.tsv", "--space", "{d}/nope.toml",
                                       "--out", "{d}/out"), "nope.toml"),
    # option values
    Case("pretrain --lr -1", _pretrain("--lr", "-1"), "--lr -1: must be > 0"),
    Case("finetune --lr -1", _finetune("train.tsv", "--lr", "-1"), "--lr -1: must be > 0"),
    Case("finetune --dim 0", _finetune("train.tsv", "--dim", "0"), "--dim 0: must be >= 1"),
    Case("pretrain --epochs -1", _pretrain("--epochs", "-1"), "--epochs -1: must be >= 0"),
    Case("vectors train --epochs -1", _vectors("{d}/corpus.txt", "--epochs", "-1"),
         "--epochs -1: must be >= 1"),
    Case("pretrain --n-layers -1", _pretrain("--n-layers", "-1"), "--n-layers -1: must be >= 0"),
    Case("finetune --dev-fraction 1", _finetune("train.tsv", "--dev-fraction", "1"),
         "--dev-fraction 1: must be >= 0 and < 1"),
    Case("pretrain --objective bert", _pretrain("--objective", "bert"), "--objective bert"),
    Case("pretrain --time-budget soon", _pretrain("--time-budget", "soon"), "--time-budget 'soon'"),
    Case("pretrain --lr nan", _pretrain("--lr", "nan"), "--lr nan: must be a finite number"),
    Case("vectors train --dim many", _vectors("{d}/corpus.txt", "--dim", "many"),
         "'many' is not a valid integer"),
    Case("unknown option", _vectors("{d}/corpus.txt", "--colour", "blue"), "--colour"),
    Case("pretrain --tokenizer missing", _pretrain("--tokenizer", "{d}/nope"), "nope"),
    Case("finetune --init missing", _finetune("train.tsv", "--init", "{d}/nope"), "nope"),
    # --out
    Case("vectors --out under a file", _cmd("vectors", "train", "{d}/corpus.txt", "--out",
                                            "{d}/a-file/out", *V), "cannot write there"),
    Case("pretrain --out under a file", _cmd("pretrain", "{d}/corpus.txt", "--out", "{d}/a-file/out",
                                             *P, "--cache-dir", "{d}/cache"), "cannot write there"),
    Case("finetune --out under a file", _cmd("finetune", "{d}/train.tsv", "--out", "{d}/a-file/out",
                                              *F), "cannot write there"),
    Case("tune --out under a file", _cmd("tune", "{d}/train.tsv", "--space", "{d}/space.toml",
                                         "--out", "{d}/a-file/out"), "cannot write there"),
    Case("model export --out under a file",
         _cmd("model", "export", "{d}/encoder", "--out", "{d}/a-file/out"), "cannot write there"),
    Case("--out is a file", _cmd("vectors", "train", "{d}/corpus.txt", "--out", "{d}/a-file", *V),
         "not a folder"),
    Case("--out is someone's folder", _cmd("vectors", "train", "{d}/corpus.txt", "--out",
                                           "{d}/not-artifact", *V), "not a warmstart artifact"),
    # artifacts
    Case("predict: no such model", _cmd("predict", "{d}/nope", "{d}/corpus.txt"), "nope"),
    Case("predict: warmstart.json is a list", _cmd("predict", "{d}/list-meta", "{d}/corpus.txt"),
         "list-meta"),
    Case("predict: warmstart.json without kind", _cmd("predict", "{d}/no-kind", "{d}/corpus.txt"),
         "no-kind"),
    Case("predict: warmstart.json with a bad config",
         _cmd("predict", "{d}/bad-config", "{d}/corpus.txt"), "bad-config"),
    Case("predict: warmstart.json cut short", _cmd("predict", "{d}/broken-meta", "{d}/corpus.txt"),
         "broken-meta"),
    Case("predict: a vectors artifact", _cmd("predict", "{d}/vectors", "{d}/corpus.txt"), "vectors"),
    Case("predict: empty file", _cmd("predict", "{d}/classifier", "{d}/empty.txt"), "empty.txt"),
    Case("predict: empty standard input", _cmd("predict", "{d}/classifier", "-"), "standard input",
         stdin=""),
    Case("model export of vectors", _cmd("model", "export", "{d}/vectors", "--out", "{d}/out"),
         "vectors"),
    Case("vectors import: truncated file", _cmd("vectors", "import", "{d}/short.vec", "--out",
                                                "{d}/out"), "short.vec"),
    Case("vectors import: binary garbage", _cmd("vectors", "import", "{d}/garbage.bin", "--out",
                                                "{d}/out"), "garbage.bin"),
    Case("info: not an artifact", _cmd("info", "{d}/not-artifact"), "not-artifact"),
    # found by the Hypothesis campaign (tests/fuzz)
    Case("tune --storage blank", _cmd("tune", "{d}/train.tsv", "--space", "{d}/space.toml",
                                      "--out", "{d}/new/out", "--storage", " "),
         "cannot open the database"),
    Case("tune --heartbeat 2**63", _cmd("tune", "{d}/train.tsv", "--space", "{d}/space.toml",
                                        "--out", "{d}/out", "--heartbeat", str(2**63)),
         "--heartbeat 9223372036854775808: must be between 1 and 86400"),
    Case("vectors train --bucket 2**63", _vectors("{d}/corpus.txt", "--bucket", str(2**63)),
         "--bucket 9223372036854775808: must be between 1 and 1073741824"),
    Case("pretrain --device ''", _pretrain("--device", ""), "--device '': not a device"),
    Case("--out ''", _cmd("vectors", "train", "{d}/corpus.txt", "--out", "", *V),
         "--out '.': give the path of a new folder"),
    Case("tokenizer train --vocab-size 2**31", _cmd("tokenizer", "train", "{d}/corpus.txt", "--out",
                                                   "{d}/out", "--vocab-size", str(2**31)),
         "--vocab-size 2147483648: must be an integer above 5"),
    Case("pretrain --vocab-size 2**31", _pretrain("--vocab-size", str(2**31)),
         "--vocab-size 2147483648: must be between 16 and 16777216"),
    Case("tokenizer train: JSONL without the field, deep --out",
         _cmd("tokenizer", "train", "{d}/control.jsonl", "--out", "{d}/new/a/b", "--text-field",
              "body", "--vocab-size", "100"), "control.jsonl"),
]


def snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if "cache" not in p.parts}


def run_case(case: Case, d: Path) -> Outcome:
    from warmstart.cli import main

    before = snapshot(d)
    err, out = io.StringIO(), io.StringIO()
    code: object = 0
    crashed = False
    stdin = sys.stdin
    try:
        if case.stdin is not None:
            sys.stdin = io.StringIO(case.stdin)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main([str(a) for a in case.args(d)])
    except SystemExit as e:
        code = e.code
    except Exception:  # what a user would see as a traceback
        crashed = True
        err.write(traceback.format_exc())
    finally:
        sys.stdin = stdin
    text = err.getvalue()
    return Outcome(case, code, text, crashed or "Traceback" in text,
                   sorted(snapshot(d) - before))


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_inputs(d)
        outcomes = [run_case(c, d) for c in CASES]
    print("| case | exit | error line | traceback | left in --out | ok |")
    print("|---|---|---|---|---|---|")
    for o in outcomes:
        line = o.stderr.splitlines()[0] if o.stderr else ""
        line = line.replace(tmp, "…").replace("|", "\\|")
        print(f"| {o.case.name} | {o.code} | `{line[:110]}` | {'yes' if o.traceback else 'no'} "
              f"| {', '.join(o.left_behind) or 'nothing'} | {'ok' if o.ok else 'FAIL'} |")
    failed = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} cases end as a user's error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
