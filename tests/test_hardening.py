"""Bad input and hostile surroundings: every case is an ``error:`` line and exit 2, found before
any work, with nothing left behind; artifacts are readable by other users.

The data here is made by the tests (no shared data), so these checks run anywhere.
"""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmstart import artifact
from warmstart.cli import main
from warmstart.errors import WarmstartError, with_article

WORDS = ("the a film story actor plot scene music ending cast director script camera light "
         "long short slow quick dark bright old new").split()
GOOD, BAD = "good great superb lovely fine".split(), "bad awful poor dull weak".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    lines = [" ".join(rng.choice(WORDS + GOOD + BAD) for _ in range(rng.randint(8, 20)))
             for _ in range(400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def labeled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(1)
    path = tmp_path_factory.mktemp("data") / "train.tsv"
    rows = ["text\tlabel"]
    for i in range(60):
        label, cue = ("pos", GOOD) if i % 2 else ("neg", BAD)
        words = [rng.choice(WORDS) for _ in range(6)] + [rng.choice(cue), rng.choice(cue)]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)}\t{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


VECTORS = ["--dim", "8", "--epochs", "1", "--min-count", "1", "--workers", "1", "--quiet"]
PRETRAIN = ["--size", "tiny", "--vocab-size", "300", "--seq-len", "32", "--batch-size", "8",
            "--max-steps", "2", "--eval-every", "0", "--threads", "1", "--quiet"]
FINETUNE = ["--dim", "8", "--epochs", "1", "--dev-fraction", "0.2", "--quiet"]


def fails(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run the CLI in-process, expecting a user's error: exit 2, ``error:`` first, no traceback."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert e.value.code == 2, (out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    return err


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# impossible values: refused by name before any work


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    [
        ("pretrain", "--lr", "-1", "--lr -1: must be > 0"),
        ("pretrain", "--epochs", "-1", "--epochs -1: must be >= 0"),
        ("pretrain", "--n-layers", "-1", "--n-layers -1: must be >= 0"),
        ("pretrain", "--dropout", "1.5", "--dropout 1.5: must be >= 0 and < 1"),
        ("pretrain", "--lr", "nan", "--lr nan: must be a finite number"),
        ("vectors", "--epochs", "-1", "--epochs -1: must be >= 1"),
        ("vectors", "--dim", "0", "--dim 0: must be between 1 and 100000"),
        ("vectors", "--alpha", "0", "--alpha 0: must be > 0 and <= 10"),
        ("finetune", "--lr", "-1", "--lr -1: must be > 0"),
        ("finetune", "--dim", "0", "--dim 0: must be >= 1"),
        ("finetune", "--epochs", "-1", "--epochs -1: must be >= 0"),
        ("finetune", "--dev-fraction", "1", "--dev-fraction 1: must be >= 0 and < 1"),
    ],
)
def test_impossible_values_are_refused_by_name(
    capsys: pytest.CaptureFixture[str], corpus: Path, labeled: Path, tmp_path: Path,
    command: str, option: str, value: str, message: str,
) -> None:
    out = tmp_path / "out"
    args = {"pretrain": ["pretrain", corpus, *PRETRAIN, "--cache-dir", tmp_path / "c"],
            "vectors": ["vectors", "train", corpus, *VECTORS],
            "finetune": ["finetune", labeled, *FINETUNE]}[command]
    err = fails(capsys, *args, "--out", out, option, value)
    assert message in err
    assert not out.exists()


def test_impossible_values_in_a_config_file_are_refused_by_name(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path,
) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[vectors]\nwindow = 0\n", encoding="utf-8")
    err = fails(capsys, "vectors", "train", corpus, *VECTORS, "--out", tmp_path / "o",
                "--config", config)
    assert "--window 0: must be >= 1" in err


def test_a_mistyped_option_is_an_error_line_too(capsys: pytest.CaptureFixture[str],
                                                corpus: Path, tmp_path: Path) -> None:
    err = fails(capsys, "vectors", "train", corpus, "--out", tmp_path / "o", "--dim", "many")
    assert "'many' is not a valid integer" in err and "-h" in err


# ---------------------------------------------------------------------------------------------
# an --out that cannot be written: found before any work, nothing left behind


def _unwritable_outs(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    yield "under a file", blocker / "out"
    yield "deep under a file", blocker / "x" / "y" / "out"
    if os.geteuid() != 0:  # root writes anywhere: the mode bits cannot stop it
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        yield "read-only folder", locked / "out"


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any start of real work fail the test: the check must come first."""
    import warmstart.pretraining
    import warmstart.transfer.finetune
    import warmstart.vectors.train

    def started(*_: object, **__: object) -> None:
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(warmstart.vectors.train, "scan_corpus", started)
    monkeypatch.setattr(warmstart.pretraining, "_tokenizer", started)
    monkeypatch.setattr(warmstart.transfer.finetune, "_read", started)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("command", ["vectors", "pretrain", "finetune", "tune"])
def test_an_unwritable_out_is_refused_before_work(
    capsys: pytest.CaptureFixture[str], corpus: Path, labeled: Path, tmp_path: Path, command: str,
) -> None:
    space = tmp_path / "space.toml"
    space.write_text("[space.lr]\ntype = \"float\"\nlow = 1e-4\nhigh = 1e-2\nlog = true\n",
                     encoding="utf-8")
    for case, out in _unwritable_outs(tmp_path):
        before = files_under(tmp_path)
        args = {"vectors": ["vectors", "train", corpus, *VECTORS],
                "pretrain": ["pretrain", corpus, *PRETRAIN, "--cache-dir", tmp_path / "c"],
                "finetune": ["finetune", labeled, *FINETUNE],
                "tune": ["tune", labeled, "--space", space, "--n-trials", "1"]}[command]
        err = fails(capsys, *args, "--out", out)
        assert f"--out {out}: cannot write there" in err, (case, err)
        assert files_under(tmp_path) == before, case  # nothing made, nothing left


def test_a_permission_error_is_an_error_line(capsys: pytest.CaptureFixture[str], corpus: Path,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a user without rights sees it (the tests may run as root, which has every right)."""
    def refused(*_: object, dir: str | None = None, **__: object) -> str:  # noqa: A002
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(artifact.tempfile, "mkdtemp", refused)
    out = tmp_path / "new" / "out"
    err = fails(capsys, "vectors", "train", corpus, *VECTORS, "--out", out)
    assert f"--out {out}: cannot write there (Permission denied)" in err
    assert not (tmp_path / "new").exists()  # the folders made for the probe are gone again


def test_a_full_disk_is_refused_before_training(corpus: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import warmstart.pretraining

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(artifact.shutil, "disk_usage",
                        lambda _: usage._replace(free=100_000))
    monkeypatch.setattr(warmstart.pretraining, "train", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "out"
    with pytest.raises(WarmstartError, match=r"--out .*MiB free on its disk, but the model .* need"):
        warmstart.pretraining.pretrain(
            corpus, out=out, progress=False, cache_dir=str(tmp_path / "c"), size="tiny",
            vocab_size=300, seq_len=32, batch_size=8, max_steps=2, eval_every=0)
    assert not out.exists()


def test_a_full_disk_is_refused_before_finetuning(labeled: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from warmstart.transfer import training
    from warmstart.transfer.finetune import finetune

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(artifact.shutil, "disk_usage", lambda _: usage._replace(free=100_000))
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "out"
    with pytest.raises(WarmstartError, match=r"MiB free on its disk, but the classifier .* need"):
        finetune(labeled, out=out, progress=False, dim=8, epochs=1)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# file modes: what warmstart writes is readable by others, as any file the user makes


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_artifacts_get_the_modes_of_the_umask(capsys: pytest.CaptureFixture[str], corpus: Path,
                                              labeled: Path, tmp_path: Path) -> None:
    made = {"vectors": tmp_path / "v", "pretrain": tmp_path / "p", "finetune": tmp_path / "f",
            "export": tmp_path / "e"}
    main(["vectors", "train", str(corpus), *VECTORS, "--out", str(made["vectors"])])
    main(["pretrain", str(corpus), *PRETRAIN, "--cache-dir", str(tmp_path / "c"),
          "--out", str(made["pretrain"])])
    main(["finetune", str(labeled), *FINETUNE, "--out", str(made["finetune"])])
    main(["model", "export", str(made["pretrain"]), "--out", str(made["export"])])
    capsys.readouterr()
    for name, folder in made.items():
        modes = {p.relative_to(tmp_path): stat.S_IMODE(p.stat().st_mode)
                 for p in [folder, *files_under(folder)]}
        wrong = {p: oct(m) for p, m in modes.items()
                 if m != (0o755 if (tmp_path / p).is_dir() else 0o644)}
        assert not wrong, (name, wrong)
        wanted = "config.json" if name == "export" else "warmstart.json"
        assert any(p.name == wanted for p in files_under(folder)), name


# ---------------------------------------------------------------------------------------------
# wording


def test_articles_agree_with_their_nouns() -> None:
    assert with_article("encoder") == "an encoder"
    assert with_article("'ensemble'") == "an 'ensemble'"
    assert with_article("classifier") == "a classifier"
    assert with_article("'vectors'") == "a 'vectors'"


def test_the_wrong_kind_of_artifact_is_named_with_its_article(tmp_path: Path) -> None:
    folder = tmp_path / "enc"
    folder.mkdir()
    artifact.write_meta(folder, kind="encoder", config={})
    with pytest.raises(WarmstartError, match="is an 'encoder' artifact, but a 'vectors' artifact"):
        artifact.read_meta(folder, kind="vectors")


def test_invalid_json_lines_are_described_without_dangling_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    data = tmp_path / "docs.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "tab\there"}\n', encoding="utf-8")
    err = fails(capsys, "vectors", "train", data, *VECTORS, "--out", tmp_path / "o")
    assert f"{data}:2: invalid JSON (Invalid control character, column" in err


# ---------------------------------------------------------------------------------------------
# predict: one output row per input line


@pytest.fixture(scope="module")
def classifier(labeled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "clf"
    main(["finetune", str(labeled), *FINETUNE, "--out", str(out)])
    return out


def test_predict_keeps_blank_lines_in_place(capsys: pytest.CaptureFixture[str], classifier: Path,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    lines = ["a good film", "", "great", "   ", "awful plot"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    main(["predict", str(classifier), str(source)])
    rows = capsys.readouterr().out.split("\n")[:-1]
    assert len(rows) == len(lines)
    assert [bool(r) for r in rows] == [bool(t.strip()) for t in lines]
    assert set(rows) - {""} <= {"pos", "neg"}

    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    main(["predict", str(classifier), "-", "--jsonl"])
    records = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert [(r["line"], r["text"]) for r in records] == list(enumerate(lines, start=1))
    assert [r["label"] is None for r in records] == [not t.strip() for t in lines]


def test_predict_numbers_csv_rows(capsys: pytest.CaptureFixture[str], classifier: Path,
                                  tmp_path: Path) -> None:
    import json

    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,"a good, great film"\n2,\n3,awful\n', encoding="utf-8")
    capsys.readouterr()
    main(["predict", str(classifier), str(source), "--jsonl"])
    records = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert [(r["line"], r["text"], r["label"] is None) for r in records] == [
        (1, "a good, great film", False), (2, "", True), (3, "awful", False)]


# ---------------------------------------------------------------------------------------------
# the table of bad inputs (tests/bad_inputs.py): every case, as a test


@pytest.fixture(scope="module")
def bad_input_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bad_inputs import make_inputs

    folder = tmp_path_factory.mktemp("bad-inputs")
    make_inputs(folder)
    return folder


def _case_names() -> list[object]:
    from bad_inputs import CASES

    return [pytest.param(c, id=c.name) for c in CASES]


@pytest.mark.parametrize("case", _case_names())
def test_bad_input_ends_as_a_users_error(case: object, bad_input_folder: Path) -> None:
    from bad_inputs import run_case

    outcome = run_case(case, bad_input_folder)  # type: ignore[arg-type]
    assert outcome.ok, (outcome.code, outcome.stderr, outcome.left_behind)
