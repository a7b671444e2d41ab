"""Fuzzing the CLI's options: random values, of the right and the wrong types, for every
option of every command, through :func:`warmstart.cli.main`.

Each command starts from a cheap invocation that works (tiny files, one step, small models);
an example appends a few options with drawn values (the last value of an option wins) and
runs it. The property: exit 0, or exit 2 with an ``error:`` line (click's usage errors say
``Error:``) and no traceback; after exit 2 nothing new is left where outputs go.

Each run is a child process forked from a clean server (tests/fuzz/cli_child.py), with its
address space capped: a crash or a runaway allocation is reported with the command line
instead of ending the test run. A run that takes longer than a few seconds (a valid but
large value: many epochs, a big model) is stopped and counted as an event, not a failure.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cli_child
import click
import numpy as np
import pytest
from fuzzkit import budget, listing, scale, temporaries, toml_document, toml_scalars, workdir
from hypothesis import event, given
from hypothesis import strategies as st

from warmstart.cli import cli

# -- running the CLI -----------------------------------------------------------------------

#: Seconds a command may run (longer in the long profile), and bytes of address space it
#: may add, before it is stopped.
SECONDS = 5 if scale() <= 1 else 20
MEMORY = 4 << 30

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["cli_child", "warmstart.cli", "torch", "numpy"])


@dataclass
class Outcome:
    code: int | None  # exit status; None when the command raised (a bug), crashed or was stopped
    out: str = ""
    err: str = ""
    trace: str = ""  # the traceback of an exception main() let through
    signal: int | None = None  # the signal that ended the child, when one did
    slow: bool = False


def run(argv: list[str]) -> Outcome:
    """Run ``warmstart ARGV`` in a child process; its exit status, output and any exception."""
    receive, send = _CONTEXT.Pipe(duplex=False)
    env = {k: v for k, v in os.environ.items() if k.startswith("WARMSTART_")}
    child = _CONTEXT.Process(target=cli_child.run_child,
                             args=(argv, send, MEMORY, env, "a short text to label\n"))
    child.start()
    send.close()
    got = None
    if receive.poll(SECONDS):
        try:
            got = receive.recv()
        except EOFError:  # the child died without a word
            pass
    child.join(5 if got is not None else 0.1)
    if child.is_alive():
        child.kill()
        child.join()
        if got is None:
            return Outcome(None, slow=True)
    receive.close()
    if got is None:
        code = child.exitcode
        return Outcome(None, signal=-code if code is not None and code < 0 else None,
                       trace=f"the child ended with exit status {code} and sent nothing")
    status, out, err, trace = got
    return Outcome(status, out, err, trace)


def _values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == option]


def _beyond_float32(argv: list[str], option: str) -> bool:
    def big(v: str) -> bool:
        try:
            return math.isfinite(float(v)) and abs(float(v)) > 3.4e38
        except ValueError:
            return False

    return any(big(v) for v in _values(argv, option))


#: Failures the campaign found in code outside its own fixes, each kept by an xfail test at
#: the end of this file. The fuzz counts them as events and goes on exploring rather than
#: stopping at them again; remove an entry when its test passes.
KNOWN: dict[str, Callable[[Outcome, list[str], set[str]], bool]] = {
}


def violation(outcome: Outcome, argv: list[str], work: Path, before: set[str], *,
              known: bool = True) -> str | None:
    """What in a run breaks the property every run must have (see the module docstring), or
    None. ``known``: let the failures in KNOWN pass as events (inside a Hypothesis test:
    outside one, no events)."""
    shown = " ".join(argv)
    event_ = event if known else (lambda _: None)
    if outcome.slow:
        if not known:
            return f"warmstart {shown}: ran past {SECONDS} s and was stopped"
        event_("ran past the time limit (stopped)")
        return None
    left = listing(work) - before
    for name, matches in KNOWN.items():
        if known and matches(outcome, argv, left):
            event_(f"known failure: {name}")
            return None
    if outcome.signal is not None:
        return f"warmstart {shown}\ncrashed: {signal.Signals(outcome.signal).name}"
    if outcome.trace:
        return f"warmstart {shown}\nraised:\n{outcome.trace}\n{outcome.err}"
    if "Traceback" in outcome.err:
        return f"warmstart {shown}\n{outcome.err}"
    if outcome.code not in (0, 2):
        return f"warmstart {shown}: exit {outcome.code}\n{outcome.err}"
    if outcome.code == 2:
        if not re.search(r"^(error|Error): ", outcome.err, re.M):
            return f"warmstart {shown}: exit 2 without an error line\n{outcome.err}"
        if left:
            return f"warmstart {shown}: failed but left {sorted(left)}\n{outcome.err}"
    if temporaries(work):
        return f"warmstart {shown}: left {temporaries(work)}"
    event_(f"exit {outcome.code}")
    return None


# -- the files commands read ---------------------------------------------------------------

WORDS = ("the cat dog sat on mat a big small red blue fish bird tree house car road good bad "
         "film movie great awful").split()


@dataclass
class World:
    """Small inputs of every kind, made once per module; commands only read them."""

    root: Path
    paths: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return str(self.paths[name])

    def __repr__(self) -> str:
        return f"World({str(self.root)!r})"

    def argv(self, name: str, out: Path) -> list[str]:
        """The cheap invocation of command ``name`` (BASE), writing to ``out``."""
        values = {**{k: str(v) for k, v in self.paths.items()}, "out": str(out)}
        return [*name.split(), *(re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], a)
                                 for a in BASE[name])]


def make_world(root: Path) -> World:
    from warmstart.corpus import Corpus
    from warmstart.pretraining import pretrain
    from warmstart.tokenize.subword import train_tokenizer
    from warmstart.transfer.finetune import finetune
    from warmstart.vectors.formats import save_word2vec
    from warmstart.vectors.keyed import KeyedVectors

    rng = np.random.default_rng(0)
    w = World(root)
    p = w.paths

    def put(name: str, text: str) -> Path:
        p[name] = root / name
        p[name].write_text(text, encoding="utf-8")
        return p[name]

    lines = [" ".join(rng.choice(WORDS, 10)) for _ in range(60)]
    put("corpus.txt", "\n".join(lines) + "\n")
    put("corpus.jsonl", "".join(json.dumps({"text": t}) + "\n" for t in lines[:20]))
    rows = [(" ".join(rng.choice(WORDS, 6)) + (" good great" if i % 2 else " bad awful"),
             "pos" if i % 2 else "neg") for i in range(40)]
    put("train.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    put("test.tsv", "text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows[:10]))
    put("pairs.tsv", "cat\tdog\t5\nred\tblue\t6\ngood\tbad\t2\n")
    put("analogies.txt", ": x\ncat dog fish bird\nred blue good bad\n")
    put("empty.txt", "")
    put("binary.bin", "\x00\x01\x02")
    put("config.toml", toml_document({}, {"epochs": 1}))
    put("space.toml", toml_document({"finetune": {"body": "tfidf", "method": "probe"},
                                     "tune": {"n_trials": 1},
                                     "space": {"C": {"type": "float", "low": 0.1, "high": 10.0,
                                                     "log": True}}}))
    kv = KeyedVectors(WORDS, rng.standard_normal((len(WORDS), 8)).astype(np.float32))
    p["vectors"] = kv.save(root / "vectors")
    p["w2v.txt"] = root / "w2v.txt"
    save_word2vec(kv, p["w2v.txt"])
    p["tokenizer"] = root / "tokenizer"
    train_tokenizer(lines, out=p["tokenizer"], vocab_size=80, min_frequency=1,
                    progress=False)
    p["encoder"] = root / "encoder"
    pretrain(Corpus(p["corpus.txt"]), out=p["encoder"], size="tiny", hidden=16, n_layers=1,
             n_heads=2, ffn=32, vocab_size=100, seq_len=16, max_steps=1, progress=False)
    p["classifier"] = root / "classifier"
    finetune(str(p["train.csv"]), out=p["classifier"], body="tfidf", method="probe",
             progress=False)
    p["hf"] = root / "hf"
    assert run(["model", "export", str(p["encoder"]), "--out", str(p["hf"])]).code == 0
    p["missing"] = root / "missing"
    p["folder"] = root / "a-folder"
    p["folder"].mkdir()
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("cli-fuzz")
    old = os.environ.get("WARMSTART_CACHE")
    os.environ["WARMSTART_CACHE"] = str(root / "cache")
    try:
        yield make_world(root)
    finally:
        if old is None:
            os.environ.pop("WARMSTART_CACHE", None)
        else:
            os.environ["WARMSTART_CACHE"] = old


# -- commands and values -------------------------------------------------------------------

QUICK_TRAIN = ["--max-steps", "1", "--time-budget", "5s", "--eval-every", "1",
               "--eval-batches", "1", "--log-every", "1", "--quiet"]

#: Each command's cheap invocation; "{name}" is a world file, "{out}" the example's output.
BASE: dict[str, list[str]] = {
    "vectors train": ["{corpus.txt}", "--out", "{out}", "--epochs", "1", "--dim", "8",
                      "--min-count", "1", "--workers", "1", "--bucket", "1000", "--quiet"],
    "vectors eval": ["{vectors}", "--pairs", "{pairs.tsv}", "--analogies", "{analogies.txt}"],
    "vectors neighbors": ["{vectors}", "cat", "--topn", "3"],
    "vectors export": ["{vectors}", "--out", "{out}"],
    "vectors import": ["{w2v.txt}", "--out", "{out}"],
    "tokenizer train": ["{corpus.txt}", "--out", "{out}", "--vocab-size", "200", "--quiet"],
    "pretrain": ["{corpus.txt}", "--out", "{out}", "--size", "tiny", "--hidden", "16",
                 "--n-layers", "1", "--n-heads", "2", "--ffn", "32", "--vocab-size", "100",
                 "--seq-len", "16", "--batch-size", "4", *QUICK_TRAIN],
    "model export": ["{encoder}", "--out", "{out}"],
    "model import": ["{hf}", "--out", "{out}"],
    "finetune": ["{train.csv}", "--out", "{out}", "--body", "tfidf", "--method", "probe",
                 "--cv-repeats", "1", *QUICK_TRAIN],
    "augment": ["{train.csv}", "--out", "{out}", "--copies", "1", "--vectors", "{vectors}",
                "--quiet"],
    "predict": ["{classifier}", "{test.tsv}", "--text-field", "text"],
    "evaluate": ["{classifier}", "{test.tsv}"],
    "tune": ["{train.csv}", "--space", "{space.toml}", "--out", "{out}", "--n-trials", "1",
             "--quiet"],
    "info": ["{vectors}"],
    "demo": ["--out", "{out}", "--epochs", "x"],  # only values that fail before any work
}


def command(name: str) -> click.Command:
    cmd: click.Command = cli
    for part in name.split():
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[part]
    return cmd


OUT_OPTIONS = {"--out"}
#: Options that name files to read (values: world files of every kind, and nonsense).
PATH_OPTIONS = {"--init", "--dev", "--unlabeled", "--teacher", "--augment-vectors",
                "--augment-mlm", "--vectors", "--mlm", "--eval", "--config", "--space",
                "--analogies", "--pairs", "--task"}
READABLE = ("corpus.txt", "corpus.jsonl", "train.csv", "test.tsv", "pairs.tsv", "analogies.txt",
            "empty.txt", "binary.bin", "config.toml", "space.toml", "vectors", "w2v.txt",
            "tokenizer", "encoder", "classifier", "hf", "missing", "folder")

weird_text = st.sampled_from(("", " ", "-1", "0", "nan", "inf", "1e999", "x", "--", "-",
                              "1.5", "2**8", "0x10", "auto", "none", "\u00b2", "a,b", "=",
                              "~", "/", ".", "..")) | st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
ints = st.integers(-2, 4).map(str) | st.sampled_from(
    ("0", "-1", "2147483648", "9223372036854775808", "-9223372036854775809", "1_0", " 3", "+2"))
floats = st.floats(-2, 2).map(repr) | st.sampled_from(
    ("0", "-0.0", "1e-300", "1e300", "nan", "-inf", "inf", "0.999999", "1", "1.0"))


def ref(name: str) -> str:
    """A placeholder for a world file (or an output target, "out:KIND") in a drawn argv,
    filled in by :func:`materialize`; NUL, which argv words cannot hold, delimits it."""
    return f"\0{name}\0"


world_file = st.sampled_from(READABLE).map(ref)


@st.composite
def option_value(draw: st.DrawFn, param: click.Option, cheap_only: bool) -> list[str]:
    """argv words that set ``param``: its flag, or its name and a drawn value."""
    flag = param.opts[0]
    if param.is_flag:
        forms = [*param.opts, *param.secondary_opts]
        return [draw(st.sampled_from(forms))]
    if cheap_only:  # values click itself refuses, so that nothing runs
        if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
            return [flag, draw(st.sampled_from(("x", "", "1..2", "--", "one")))]
        return [flag]  # a missing value
    if flag in OUT_OPTIONS:
        target = draw(st.sampled_from(("new", "nested", "empty", "file", "foreign", "weird")))
        return [flag, draw(weird_text) if target == "weird" else ref(f"out:{target}")]
    if flag in PATH_OPTIONS or isinstance(param.type, click.Path):
        value = draw(world_file | weird_text)
        if flag == "--task":
            value = draw(st.sampled_from(("t", "", "a=b="))) + "=" + value
        return [flag, value]
    if isinstance(param.type, click.Choice):
        return [flag, draw(st.sampled_from([str(c) for c in param.type.choices]) | weird_text)]
    if isinstance(param.type, click.types.IntParamType):
        return [flag, draw(ints | weird_text)]
    if isinstance(param.type, click.types.FloatParamType):
        return [flag, draw(floats | ints | weird_text)]
    return [flag, draw(weird_text | world_file)]


@st.composite
def invocation(draw: st.DrawFn, name: str) -> list[str]:
    """``warmstart NAME ...``: the cheap invocation, an input replaced now and then, and a
    few options appended with drawn values (placeholders for files: see :func:`ref`)."""
    cmd = command(name)
    argv = [*name.split(), *(re.sub(r"\{([^}]+)\}", lambda m: ref(m.group(1)), a)
                             for a in BASE[name])]
    options = [p for p in cmd.params if isinstance(p, click.Option) and p.name != "help"]
    cheap_only = name == "demo"
    # positional arguments: the base's world files not right after an option
    inputs = [i for i, a in enumerate(argv) if a.startswith("\0") and a != ref("out")
              and not argv[i - 1].startswith("-")]
    if inputs and (not options or draw(st.integers(0, 3)) == 0):
        argv[draw(st.sampled_from(inputs))] = draw(world_file | weird_text)
    if options:
        for param in draw(st.lists(st.sampled_from(options), min_size=1, max_size=3)):
            argv += draw(option_value(param, cheap_only))
    if draw(st.integers(0, 9)) == 0:  # an unknown option, a stray argument, or help
        argv.append(draw(st.sampled_from(("--bogus", "-x", "stray", "--help", "--config"))))
    if name == "tokenizer train" and "unigram" in argv:
        # test_unigram_vocabulary_too_small_for_the_characters: the tokenizers library may
        # never return
        argv += ["--vocab-size", "200"]
    return argv


def materialize(argv: list[str], world: World, work: Path) -> list[str]:
    """``argv`` with its placeholders replaced: world files, and output targets made in
    ``work`` (``out``: new; ``out:nested``: under missing folders; ``out:empty``: an empty
    folder; ``out:file``: a file; ``out:foreign``: a folder of someone else's files)."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "out":
            return str(work / "out")
        if not name.startswith("out:"):
            return world[name]
        target = name[4:]
        made = work / "a" / "b" / "c" if target == "nested" else work / f"out-{target}"
        if target == "empty":
            made.mkdir(exist_ok=True)
        elif target == "file":
            made.write_text("x")
        elif target == "foreign":
            made.mkdir(exist_ok=True)
            (made / "mine.txt").write_text("keep me")
        return str(made)

    return [re.sub(r"\0([^\0]*)\0", fill, a) for a in argv]


def fuzz(world: World, argv: list[str]) -> str | None:
    """Run a drawn command line; what it broke of the property, or None."""
    with workdir() as work:
        argv = materialize(argv, world, work)
        before = listing(work)
        return violation(run(argv), argv, work, before)


# One test per command, so that each gets its own examples and its own statistics.

@given(invocation("vectors train"))
@budget(6)
def test_vectors_train(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("vectors eval"))
@budget(6)
def test_vectors_eval(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("vectors neighbors"))
@budget(6)
def test_vectors_neighbors(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("vectors export"))
@budget(6)
def test_vectors_export(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("vectors import"))
@budget(6)
def test_vectors_import(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("tokenizer train"))
@budget(4)
def test_tokenizer_train(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("pretrain"))
@budget(4)
def test_pretrain(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("model export"))
@budget(4)
def test_model_export(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("model import"))
@budget(3)
def test_model_import(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("finetune"))
@budget(6)
def test_finetune(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("augment"))
@budget(4)
def test_augment(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("predict"))
@budget(4)
def test_predict(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("evaluate"))
@budget(4)
def test_evaluate(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("tune"))
@budget(3)
def test_tune(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("info"))
@budget(4)
def test_info(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


@given(invocation("demo"))
@budget(3)
def test_demo(world: World, argv: list[str]) -> None:
    broken = fuzz(world, argv)
    assert broken is None, broken


# -- --config files ------------------------------------------------------------------------

CONFIG_COMMANDS = ("vectors train", "finetune", "augment", "pretrain")


@st.composite
def config_file(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Values for a few of the command's options, of the right types or not, and unknown keys."""
    cmd = command(name)
    options = [p for p in cmd.params if isinstance(p, click.Option) and p.name not in
               ("help", "config", "out", "quiet", "as_json")]
    values: dict[str, Any] = {}
    for param in draw(st.lists(st.sampled_from(options), min_size=1, max_size=3)):
        assert param.name is not None
        kind = param.type
        if isinstance(kind, click.types.IntParamType):
            own: st.SearchStrategy[Any] = st.integers(-2, 4) | st.sampled_from((2**62, -(2**63)))
        elif isinstance(kind, click.types.FloatParamType):
            own = st.floats(-2, 2) | st.sampled_from((math.inf, math.nan, 1e300))
        elif isinstance(kind, click.types.BoolParamType):
            own = st.booleans()
        else:
            own = st.text(max_size=6)
        key = param.name if draw(st.booleans()) else param.name.replace("_", "-")
        values[key] = draw(own | toml_scalars | st.lists(toml_scalars, max_size=2))
    if draw(st.integers(0, 5)) == 0:
        values[draw(st.text(min_size=1, max_size=5))] = draw(toml_scalars)
    return values


@st.composite
def config_case(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    name = draw(st.sampled_from(CONFIG_COMMANDS))
    return name, draw(config_file(name)), draw(st.booleans())


@given(config_case())
@budget(8)
def test_config_files(world: World, case: tuple[str, dict[str, Any], bool]) -> None:
    name, values, in_section = case
    section = {"vectors train": "vectors"}.get(name, name)
    with workdir() as work:
        path = work / "config.toml"
        path.write_text(toml_document({section: values}) if in_section
                        else toml_document({}, values), encoding="utf-8")
        argv = [*world.argv(name, work / "out"), "--config", str(path)]
        before = listing(work)
        broken = violation(run(argv), argv, work, before)
    assert broken is None, broken


# -- failures found by the campaign ------------------------------------------------------


def strictly(world: World, work: Path, name: str, *options: str) -> str | None:
    """Run one command line; what it broke of the property, with no failure excused."""
    argv = materialize([*world.argv(name, work / "out"), *options], world, work)
    before = listing(work)
    return violation(run(argv), argv, work, before, known=False)


@pytest.mark.parametrize(("name", "options"), [
    ("vectors train", ("--dim", "2147483648")),  # was numpy's MemoryError
    ("vectors train", ("--subwords", "--bucket", "2147483648")),  # the same
    ("tokenizer train", ("--vocab-size", "2147483648")),  # the tokenizers library aborted
    ("tokenizer train", ("--out", ref("out:nested"), "--text-field", "")),  # left a/ and a/b/
    ("pretrain", ("--device", "")),  # torch.device's RuntimeError
    ("tune", ("--heartbeat", "9223372036854775808")),  # OverflowError
    ("tune", ("--sampler-seed", "9223372036854775808")),  # numpy's ValueError
    ("tune", ("--storage", " ")),  # exit 2, but left the --out folder it had made
])
def test_found_by_the_campaign(world: World, tmp_path: Path, name: str,
                               options: tuple[str, ...]) -> None:
    """Command lines the campaign found failing, in code others fixed since: kept for good."""
    broken = strictly(world, tmp_path, name, *options)
    assert broken is None, broken


# Found by the campaign: an --alpha that overflows float32 (1e300) passed the range check and
# crashed the kernel (SIGSEGV); --alpha is now at most 10.
def test_vectors_train_alpha_beyond_float32(world: World, tmp_path: Path) -> None:
    broken = strictly(world, tmp_path, "vectors train", "--alpha", "1e300")
    assert broken is None, broken


# Found by the campaign: a --dim or --bucket of 2**63-1 passed the range check and numpy's
# ValueError (array is too big) showed as a traceback; both now have a ceiling.
@pytest.mark.parametrize("options", [("--dim", "9223372036854775807"),
                                     ("--subwords", "--bucket", "9223372036854775807")])
def test_vectors_train_size_beyond_any_array(world: World, tmp_path: Path,
                                             options: tuple[str, ...]) -> None:
    broken = strictly(world, tmp_path, "vectors train", *options)
    assert broken is None, broken
