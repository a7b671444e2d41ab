"""End-to-end tests of the ``warmstart`` command.

The main flow runs the real CLI as a subprocess (``python -m warmstart ...`` in a temporary
folder); the quicker error cases call :func:`warmstart.cli.main` in-process. Models are tiny
(dim 20, 2 epochs on the 300-document Lee corpus), so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.vectors.keyed import KeyedVectors

TINY = ["--epochs", "2", "--dim", "20", "--min-count", "2", "--quiet"]
# For the small files made by the tests themselves.
SMALL = ["--epochs", "1", "--dim", "8", "--min-count", "1", "--workers", "1", "--quiet"]


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m warmstart ARGS`` in ``cwd`` and capture its output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, "-m", "warmstart", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def user_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Check a run failed as a user's mistake (exit 2, one message, no traceback); its stderr."""
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    return proc.stderr


def call(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[str, str]:
    """Run the CLI in-process, expecting success; its (stdout, stderr)."""
    main([str(a) for a in args])
    return capsys.readouterr()


def fails(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run the CLI in-process, expecting exit status 2; its stderr."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert e.value.code == 2, (out, err)
    assert "Traceback" not in err
    return err


def meta(folder: Path) -> dict:
    return json.loads((folder / "warmstart.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lee(shared_data: Path) -> Path:
    path = shared_data / "en" / "tiny" / "lee_background.cor"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def wordsim(shared_data: Path) -> Path:
    folder = shared_data / "en" / "wordsim"
    if not (folder / "questions-words.txt").is_file() or not (folder / "wordsim353.tsv").is_file():
        pytest.skip(f"{folder} lacks questions-words.txt / wordsim353.tsv")
    return folder


@pytest.fixture(scope="module")
def trained(lee: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """One tiny model trained through the real CLI: (artifact folder, --json summary, cwd)."""
    cwd = tmp_path_factory.mktemp("cli")
    proc = ok(run("vectors", "train", lee, "--out", "vecs", *TINY, "--workers", "1", "--json", cwd=cwd))
    return cwd / "vecs", json.loads(proc.stdout), cwd


# ------------------------------------------------------------------------------ 1. train, info


def test_train_writes_a_vectors_artifact(trained: tuple[Path, dict, Path], lee: Path) -> None:
    out, summary, _ = trained
    for name in ("warmstart.json", "model.safetensors", "vocab.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    m = meta(out)
    assert m["kind"] == "vectors"
    assert m["config"]["dim"] == 20 and m["config"]["min_count"] == 2 and m["config"]["epochs"] == 2
    assert m["config"]["workers"] == 1
    assert m["data"]["paths"] == [str(lee.resolve())]

    # the --json summary
    assert summary["out"] == "vecs"
    words = json.loads((out / "vocab.json").read_text(encoding="utf-8"))["words"]
    assert summary["vocab_size"] == len(words) > 1000
    assert summary["corpus_docs"] == 300
    assert math.isfinite(summary["final_loss"]) and summary["final_loss"] > 0

    # metrics.jsonl: one line per epoch with a finite loss, then the summary
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    epochs, last = lines[:-1], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        assert math.isfinite(e["loss"]) and e["loss"] > 0
        assert e["predictions"] > 0 and e["words"] > 0
    assert epochs[1]["loss"] < epochs[0]["loss"]  # it learns something
    assert last["summary"]["final_loss"] == pytest.approx(epochs[-1]["loss"])
    assert last["summary"]["vocab_size"] == summary["vocab_size"]

    kv = KeyedVectors.load(out)
    assert kv.words == words
    assert kv.vectors.shape == (len(words), 20)
    assert np.isfinite(kv.vectors).all()


def test_info_prints_the_metadata(trained: tuple[Path, dict, Path]) -> None:
    out, _, cwd = trained
    m = json.loads(ok(run("info", out, cwd=cwd)).stdout)
    assert m["kind"] == "vectors"
    assert m["format"] == "warmstart/1"
    assert m["config"]["dim"] == 20
    assert m["config"]["model"] == "skipgram"  # a default, resolved into the record
    assert m == meta(out)


def test_info_of_a_missing_folder_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = fails(capsys, "info", tmp_path / "nothing-here")
    assert "nothing-here" in err


def test_train_refuses_to_overwrite_a_foreign_folder(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text("a b c d\n" * 20, encoding="utf-8")
    keep = tmp_path / "mine" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("precious", encoding="utf-8")
    err = fails(capsys, "vectors", "train", tmp_path / "docs.txt", "--out", keep.parent, *SMALL)
    assert "--out" in err and "mine" in err
    assert keep.read_text(encoding="utf-8") == "precious"


# ------------------------------------------------------------------------------ 2. neighbors


def test_neighbors_json(trained: tuple[Path, dict, Path]) -> None:
    out, _, cwd = trained
    result = json.loads(ok(run("vectors", "neighbors", out, "the", "said", "--topn", "5", "--json",
                               cwd=cwd)).stdout)
    assert list(result) == ["the", "said"]
    vocab = set(KeyedVectors.load(out).words)
    for word, pairs in result.items():
        assert len(pairs) == 5
        names = [n for n, _ in pairs]
        scores = [s for _, s in pairs]
        assert word not in names
        assert set(names) <= vocab
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in scores)


def test_neighbors_plain(trained: tuple[Path, dict, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = trained
    stdout, _ = call(capsys, "vectors", "neighbors", out, "the", "--topn", "3")
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("the: ")
    assert lines[0].count("(") == 3


def test_neighbors_unknown_word(trained: tuple[Path, dict, Path]) -> None:
    out, _, cwd = trained
    proc = run("vectors", "neighbors", out, "the", "zqxjkvw", cwd=cwd)
    err = user_error(proc)
    assert "zqxjkvw" in err
    assert "the," not in err  # only the missing word is named
    assert proc.stdout == ""


def test_neighbors_in_python_are_the_command(trained: tuple[Path, dict, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from warmstart import neighbors

    out, _, _ = trained
    stdout, _ = call(capsys, "vectors", "neighbors", out, "the", "said", "--topn", "4", "--json")
    found = neighbors(out, ["the", "said"], topn=4)
    assert json.loads(stdout) == {w: [[n, round(float(s), 4)] for n, s in r]
                                  for w, r in found.items()}
    with pytest.raises(WarmstartError, match="zqxjkvw"):
        neighbors(KeyedVectors.load(out), ["the", "zqxjkvw"])


# ------------------------------------------------------------------------------ 3. eval


def test_eval_json(trained: tuple[Path, dict, Path], wordsim: Path) -> None:
    out, _, cwd = trained
    proc = ok(run("vectors", "eval", out, "--analogies", wordsim / "questions-words.txt",
                  "--pairs", wordsim / "wordsim353.tsv", "--json", cwd=cwd))
    res = json.loads(proc.stdout)
    assert set(res) == {"questions-words.txt", "wordsim353.tsv"}
    ana, pairs = res["questions-words.txt"], res["wordsim353.tsv"]
    assert 0.0 <= ana["accuracy"] <= 1.0
    assert ana["total"] > 0 and ana["total"] + ana["oov"] == 19544
    assert ana["correct"] == round(ana["accuracy"] * ana["total"])
    assert ana["sections"] and ana["sections"][0]["section"] == "capital-common-countries"
    assert pairs["pairs"] > 0 and pairs["pairs"] + pairs["oov"] == 353
    assert pairs["spearman"] is not None and -1.0 <= pairs["spearman"] <= 1.0


def test_eval_plain_table(trained: tuple[Path, dict, Path], wordsim: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = trained
    stdout, _ = call(capsys, "vectors", "eval", out, "--analogies", wordsim / "questions-words.txt",
                     "--pairs", wordsim / "wordsim353.tsv")
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["benchmark", "metric", "value", "coverage"]
    assert lines[1].split()[:2] == ["questions-words.txt", "accuracy"]
    assert lines[2].split()[:2] == ["wordsim353.tsv", "spearman"]
    assert "/19544)" in lines[1] and "/353)" in lines[2]


def test_eval_without_files_fails(trained: tuple[Path, dict, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = trained
    err = fails(capsys, "vectors", "eval", out)
    assert "--analogies" in err and "--pairs" in err


def test_eval_missing_benchmark_file(trained: tuple[Path, dict, Path],
                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out, _, _ = trained
    err = fails(capsys, "vectors", "eval", out, "--pairs", tmp_path / "nope.tsv")
    assert "nope.tsv" in err


def test_evaluate_vectors_in_python_is_the_command(trained: tuple[Path, dict, Path], wordsim: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from warmstart import evaluate_vectors

    out, _, _ = trained
    files = ["--analogies", wordsim / "questions-words.txt", "--pairs", wordsim / "wordsim353.tsv"]
    stdout, _ = call(capsys, "vectors", "eval", out, *files, "--method", "mul", "--json")
    results = evaluate_vectors(out, analogies=[wordsim / "questions-words.txt"],
                               pairs=wordsim / "wordsim353.tsv", method="mul")
    assert json.loads(stdout) == json.loads(json.dumps(results))
    with pytest.raises(WarmstartError, match="--analogies or --pairs"):
        evaluate_vectors(out)


# ------------------------------------------------------------------------------ 4. export, import


@pytest.mark.parametrize("fmt, name", [("word2vec", "f.txt"), ("word2vec-binary", "f.bin")])
def test_export_import_roundtrip(trained: tuple[Path, dict, Path], tmp_path: Path,
                                 fmt: str, name: str) -> None:
    from gensim.models import KeyedVectors as GensimKV

    out, _, _ = trained
    kv = KeyedVectors.load(out)
    proc = ok(run("vectors", "export", out, "--format", fmt, "--out", name, cwd=tmp_path))
    assert f"{len(kv):,} vectors of size 20" in proc.stdout
    exported = tmp_path / name
    assert exported.read_bytes().startswith(f"{len(kv)} 20\n".encode())

    ok(run("vectors", "import", name, "--out", "back", cwd=tmp_path))
    back = KeyedVectors.load(tmp_path / "back")
    assert meta(tmp_path / "back")["kind"] == "vectors"
    assert back.words == kv.words
    assert np.array_equal(back.vectors, kv.vectors)

    g = GensimKV.load_word2vec_format(str(exported), binary=fmt == "word2vec-binary")
    assert list(g.index_to_key) == kv.words
    assert np.array_equal(g.vectors, kv.vectors)


def test_export_into_a_missing_folder_fails(trained: tuple[Path, dict, Path],
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out, _, _ = trained
    err = fails(capsys, "vectors", "export", out, "--out", tmp_path / "no" / "f.txt")
    assert "f.txt" in err


def test_import_missing_file_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = fails(capsys, "vectors", "import", tmp_path / "absent.txt", "--out", tmp_path / "x")
    assert "absent.txt" in err
    assert not (tmp_path / "x").exists()


def test_export_and_import_vectors_in_python_are_the_commands(
        trained: tuple[Path, dict, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from warmstart import export_vectors, import_vectors

    out, _, _ = trained
    shutil.copytree(out, tmp_path / "vecs")  # the default --out writes into the artifact
    stdout, _ = call(capsys, "vectors", "export", tmp_path / "vecs", "--format", "word2vec-binary")
    by_command = (tmp_path / "vecs" / "vectors.bin").read_bytes()
    (tmp_path / "vecs" / "vectors.bin").unlink()
    written = export_vectors(tmp_path / "vecs", format="word2vec-binary")
    assert stdout == (f"wrote {written['vectors']:,} vectors of size {written['dim']} to "
                      f"{written['out']}\n")
    assert (tmp_path / "vecs" / "vectors.bin").read_bytes() == by_command

    text = str(tmp_path / "v.txt")
    export_vectors(KeyedVectors.load(out), out=text)
    call(capsys, "vectors", "import", text, "--out", tmp_path / "by-command", "--limit", "50")
    kv = import_vectors(text, out=tmp_path / "by-python", limit=50)
    again = KeyedVectors.load(tmp_path / "by-command")
    assert len(kv) == 50 and kv.words == again.words
    assert np.array_equal(kv.vectors, again.vectors)
    made = [meta(tmp_path / d) for d in ("by-command", "by-python")]
    assert made[0]["config"] == made[1]["config"] and made[0]["data"] == made[1]["data"]


# ------------------------------------------------------------------------------ 5. config, values


def test_config_file_and_override(lee: Path, tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text(
        "[vectors]\ndim = 12\nepochs = 1\nmin-count = 3\nwindow = 3\nworkers = 1\n", encoding="utf-8"
    )
    proc = ok(run("vectors", "train", lee, "--out", "v", "--config", "run.toml", "--dim", "16",
                  "--quiet", cwd=tmp_path))
    cfg = meta(tmp_path / "v")["config"]
    assert cfg["dim"] == 16  # the command line wins over the file
    assert cfg["min_count"] == 3 and cfg["window"] == 3 and cfg["epochs"] == 1  # from the file
    assert cfg["negative"] == 5  # untouched default
    assert KeyedVectors.load(tmp_path / "v").dim == 16
    # the plain (non --json) summary is a table
    table = proc.stdout
    assert "vocab_size" in table and "final_loss" in table and "v" in table


def test_config_from_an_artifact_reruns_its_settings(capsys: pytest.CaptureFixture[str], lee: Path,
                                                     tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    call(capsys, "vectors", "train", lee, "--out", first, "--dim", "12", "--window", "3",
         "--epochs", "1", "--min-count", "3", "--negative", "3", "--workers", "1", "--seed", "7",
         "--quiet")
    call(capsys, "vectors", "train", lee, "--out", second, "--config", first / "warmstart.json",
         "--quiet")
    assert meta(second)["config"] == meta(first)["config"]
    a, b = KeyedVectors.load(first), KeyedVectors.load(second)
    assert a.words == b.words and np.array_equal(a.vectors, b.vectors)  # one worker, one seed
    # the settings of another kind of artifact are refused
    err = fails(capsys, "finetune", lee, "--out", tmp_path / "clf", "--config",
                first / "warmstart.json", "--quiet")
    assert "warmstart.json" in err and "'vectors' artifact" in err and "'classifier'" in err
    assert not (tmp_path / "clf").exists()


def test_config_unknown_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text("a b c\n" * 10, encoding="utf-8")
    (tmp_path / "bad.toml").write_text("[vectors]\ndimm = 16\n", encoding="utf-8")
    err = fails(capsys, "vectors", "train", tmp_path / "docs.txt", "--out", tmp_path / "v",
                "--config", tmp_path / "bad.toml", *SMALL)
    assert "dimm" in err and "bad.toml" in err
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("line, key", [('dim = "abc"', "dim"), ("dim = 1.5", "dim"),
                                       ('subwords = "yes"', "subwords"), ("sample = true", "sample")])
def test_config_value_of_the_wrong_type(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        line: str, key: str) -> None:
    (tmp_path / "docs.txt").write_text("a b c\n" * 10, encoding="utf-8")
    (tmp_path / "bad.toml").write_text(f"[vectors]\n{line}\n", encoding="utf-8")
    err = fails(capsys, "vectors", "train", tmp_path / "docs.txt", "--out", tmp_path / "v",
                "--config", tmp_path / "bad.toml", "--quiet")
    assert key in err and "bad.toml" in err


def test_config_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text("a b c\n" * 10, encoding="utf-8")
    err = fails(capsys, "vectors", "train", tmp_path / "docs.txt", "--out", tmp_path / "v",
                "--config", tmp_path / "absent.toml", "--quiet")
    assert "absent.toml" in err


@pytest.mark.parametrize(
    "args, option",
    [
        (["--model", "glove"], "--model"),
        (["--dim", "0"], "--dim"),
        (["--dim", "abc"], "--dim"),  # rejected by click itself
        (["--window", "0"], "--window"),
        (["--min-count", "0"], "--min-count"),
        (["--sample", "-1"], "--sample"),
        (["--subwords", "--min-n", "5", "--max-n", "3"], "--min-n"),
    ],
)
def test_bad_option_value(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                          args: list[str], option: str) -> None:
    (tmp_path / "docs.txt").write_text("a b c\n" * 10, encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["vectors", "train", str(tmp_path / "docs.txt"), "--out", str(tmp_path / "v"),
              "--quiet", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert option in err
    assert "Traceback" not in err
    assert not (tmp_path / "v").exists()


# ------------------------------------------------------------------------------ 6. subwords


def test_subwords_give_vectors_to_unseen_words(lee: Path, tmp_path: Path,
                                               trained: tuple[Path, dict, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ok(run("vectors", "train", lee, "--out", "sub", *TINY, "--workers", "1", "--subwords",
           "--min-n", "3", "--max-n", "5", "--bucket", "20000", cwd=tmp_path))
    cfg = meta(tmp_path / "sub")["config"]
    assert (cfg["subwords"], cfg["min_n"], cfg["max_n"], cfg["bucket"]) == (True, 3, 5, 20000)
    kv = KeyedVectors.load(tmp_path / "sub")
    assert kv.bucket == 20000 and kv.min_n == 3 and kv.max_n == 5
    assert "government" in kv and "governmnet" not in kv

    proc = ok(run("vectors", "neighbors", "sub", "governmnet", "--json", cwd=tmp_path))
    pairs = json.loads(proc.stdout)["governmnet"]
    assert len(pairs) == 10
    assert all(math.isfinite(s) for _, s in pairs)
    # composed from its character n-grams, so it lands among words that share them
    assert any(n.lower().startswith("gov") for n, _ in pairs), pairs

    # the same word is unknown to a model without subwords
    err = fails(capsys, "vectors", "neighbors", trained[0], "governmnet")
    assert "governmnet" in err


# ------------------------------------------------------------------------------ 7. repeatability


def test_one_worker_runs_are_repeatable(lee: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        ok(run("vectors", "train", lee, "--out", name, *TINY, "--workers", "1", "--seed", "7",
               cwd=tmp_path))
    a, b = KeyedVectors.load(tmp_path / "a"), KeyedVectors.load(tmp_path / "b")
    assert a.words == b.words
    assert np.array_equal(a.vectors, b.vectors)
    # ... and the seed matters
    call(capsys, "vectors", "train", lee, "--out", tmp_path / "c", *TINY, "--workers", "1",
         "--seed", "8")
    c = KeyedVectors.load(tmp_path / "c")
    assert c.words == a.words
    assert not np.array_equal(c.vectors, a.vectors)


# ------------------------------------------------------------------------------ 8. bad input


def test_missing_corpus_path(tmp_path: Path) -> None:
    err = user_error(run("vectors", "train", "missing.txt", "--out", "v", *SMALL, cwd=tmp_path))
    assert "missing.txt" in err and "no such file" in err
    assert not (tmp_path / "v").exists()


def test_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n  \n\n", encoding="utf-8")
    err = user_error(run("vectors", "train", "empty.txt", "blank.txt", "--out", "v", *SMALL,
                         cwd=tmp_path))
    assert "empty.txt" in err and "no text" in err
    assert not (tmp_path / "v").exists()


def test_binary_corpus(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("some words here\n" * 5, encoding="utf-8")
    (tmp_path / "blob.txt").write_bytes(b"PK\x03\x04\x00\x00\x00\x08binary\x00stuff\n" * 10)
    err = user_error(run("vectors", "train", "good.txt", "blob.txt", "--out", "v", *SMALL,
                         cwd=tmp_path))
    assert "blob.txt" in err and "binary" in err
    assert "good.txt" not in err


def test_jsonl_missing_field_names_the_line(tmp_path: Path) -> None:
    rows = [{"body": "first document"}, {"body": "second document"}, {"text": "no body here"}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    err = user_error(run("vectors", "train", "docs.jsonl", "--text-field", "body", "--out", "v",
                         *SMALL, cwd=tmp_path))
    assert "docs.jsonl:3" in err and "'body'" in err


def test_csv_missing_column(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id,label\n1,pos\n2,neg\n", encoding="utf-8")
    err = user_error(run("vectors", "train", "data.csv", "--out", "v", *SMALL, cwd=tmp_path))
    assert "data.csv:1" in err and "'text'" in err and "id, label" in err


def test_csv_text_field_works(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = "".join(f'{i},"the cat sat on mat number {i % 3}"\n' for i in range(30))
    (tmp_path / "data.csv").write_text("id,review\n" + rows, encoding="utf-8")
    call(capsys, "vectors", "train", tmp_path / "data.csv", "--text-field", "review",
         "--out", tmp_path / "v", *SMALL)
    words = KeyedVectors.load(tmp_path / "v").words
    assert {"the", "cat", "mat"} <= set(words)
    assert "review" not in words  # the header is not text


def test_invalid_utf8_warns_and_trains_strict_fails(tmp_path: Path) -> None:
    good = b"the quick brown fox jumps over the lazy dog\n"
    (tmp_path / "latin1.txt").write_bytes(good * 40 + b"caf\xe9 cr\xe8me\n" + good * 5)
    proc = ok(run("vectors", "train", "latin1.txt", "--out", "v", *SMALL, cwd=tmp_path))
    warning = [x for x in proc.stderr.splitlines() if x.startswith("warning:")]
    assert len(warning) == 1, proc.stderr
    assert "replaced 2 invalid UTF-8" in warning[0] and "latin1.txt" in warning[0]
    assert (tmp_path / "v" / "model.safetensors").is_file()

    err = user_error(run("vectors", "train", "latin1.txt", "--out", "w", "--strict", *SMALL,
                         cwd=tmp_path))
    assert "latin1.txt:41" in err
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------------------------ 9. tokenizer


def test_tokenizer_train_and_info(lee: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = ok(run("tokenizer", "train", lee, "--out", "tok", "--model", "wordpiece",
                  "--vocab-size", "500", "--quiet", cwd=tmp_path))
    assert "tok/tokenizer.json" in proc.stdout
    tok = json.loads((tmp_path / "tok" / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["model"]["type"] == "WordPiece"
    assert 100 < len(tok["model"]["vocab"]) <= 500
    stdout, _ = call(capsys, "info", tmp_path / "tok")
    m = json.loads(stdout)
    assert m["kind"] == "tokenizer"
    # a tokenizer is not a vectors artifact
    err = fails(capsys, "vectors", "neighbors", tmp_path / "tok", "the")
    assert "tokenizer" in err


def test_tokenizer_train_takes_a_config_file_and_is_train_tokenizer(
        lee: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from warmstart import Corpus, train_tokenizer

    (tmp_path / "tok.toml").write_text(
        '[tokenizer]\nmodel = "bpe"\nvocab-size = 900\nlowercase = true\nmin_frequency = 3\n',
        encoding="utf-8")
    stdout, _ = call(capsys, "tokenizer", "train", lee, "--out", tmp_path / "by-command",
                     "--config", tmp_path / "tok.toml", "--vocab-size", "400", "--quiet", "--json")
    summary = json.loads(stdout)
    assert summary["model"] == "bpe" and summary["n_vocab"] <= 400
    cfg = meta(tmp_path / "by-command")["config"]
    # the command line wins over the file; the rest comes from the file
    assert (cfg["model"], cfg["vocab_size"], cfg["lowercase"], cfg["min_frequency"]) == (
        "bpe", 400, True, 3)
    train_tokenizer(Corpus(lee), out=tmp_path / "by-python", model="bpe", vocab_size=400,
                    lowercase=True, min_frequency=3, progress=False)
    assert meta(tmp_path / "by-python")["config"] == cfg
    assert ((tmp_path / "by-python" / "tokenizer.json").read_bytes()
            == (tmp_path / "by-command" / "tokenizer.json").read_bytes())

    (tmp_path / "bad.toml").write_text("[tokenizer]\nvocab = 10\n", encoding="utf-8")
    err = fails(capsys, "tokenizer", "train", lee, "--out", tmp_path / "x", "--config",
                tmp_path / "bad.toml")
    assert "unknown option(s) vocab" in err and not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------ 10. help


def test_help(tmp_path: Path) -> None:
    top = ok(run("--help", cwd=tmp_path)).stdout
    for name in ("vectors", "tokenizer", "info"):
        assert name in top
    train = ok(run("vectors", "train", "--help", cwd=tmp_path)).stdout
    for option in ("--min-count", "--subwords", "--min-n", "--bucket", "--config", "--out",
                   "--text-field", "--strict", "--workers", "--seed", "--json"):
        assert option in train, option


def test_version_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    from warmstart import __version__

    stdout, _ = call(capsys, "--version")
    assert stdout.strip() == f"warmstart, version {__version__}"
    err = fails(capsys, "vectors", "trian")
    assert "trian" in err
