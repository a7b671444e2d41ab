"""Fuzzing what reads artifact folders: warmstart.json, vectors artifacts, tokenizer files.

Properties: warmstart.json, a vectors artifact and a tokenizer survive save -> load -> save
unchanged; and any damage to their files, valid JSON of the wrong shape included, loads or
fails with a WarmstartError naming the folder or file, never a TypeError or KeyError.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import struct
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzkit import (
    budget,
    json_mutated,
    json_text,
    json_values,
    listing,
    maybe_mutated,
    mutated,
    temporaries,
    user_error,
    utf8_text,
    workdir,
)
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from warmstart import artifact
from warmstart.artifact import TOKENIZER_FILE, VOCAB_FILE, WEIGHTS_FILE
from warmstart.errors import WarmstartError
from warmstart.tokenize.subword import (
    SUBWORD_MODELS,
    load_tokenizer,
    train_tokenizer,
)
from warmstart.vectors.keyed import KeyedVectors

KINDS = ("vectors", "encoder", "decoder", "classifier", "tokenizer")


# -- warmstart.json ------------------------------------------------------------------------

json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


ENVELOPE = ("format", "kind", "config", "parent", "data", "created", "warmstart_version")
extras = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ENVELOPE), json_values,
                         max_size=4)


@given(st.sampled_from(KINDS), json_objects, st.none() | utf8_text, st.none() | json_objects,
       st.none() | extras)
@budget(40)
def test_meta_read_then_written_is_the_same_file(kind: str, config: dict[str, Any],
                                                 parent: str | None, data: dict[str, Any] | None,
                                                 extra: dict[str, Any] | None) -> None:
    with workdir() as d:
        written = artifact.write_meta(d, kind=kind, config=config, parent=parent, data=data,
                                      extra=extra)
        first = (d / artifact.META_FILE).read_bytes()
        meta = artifact.read_meta(d, kind=written["kind"])
        assert json_text(meta) == json_text(written)
        artifact.write_json_atomic(d / artifact.META_FILE, meta)
        assert (d / artifact.META_FILE).read_bytes() == first
        assert listing(d) == {artifact.META_FILE}


def a_meta() -> dict[str, Any]:
    return {"format": artifact.FORMAT, "kind": "vectors", "config": {"dim": 2}, "parent": None,
            "data": None, "created": "2024-01-01T00:00:00+00:00", "warmstart_version": "0.1.0"}


@st.composite
def meta_bytes(draw: st.DrawFn) -> bytes:
    """warmstart.json: any JSON, a valid file reshaped, or bytes damaged."""
    how = draw(st.sampled_from(("any", "reshaped", "damaged")))
    if how == "any":
        return json_text(draw(json_values)).encode()
    if how == "reshaped":
        return json_text(draw(json_mutated(a_meta()))).encode()
    return draw(mutated(json_text(a_meta()).encode()))


@given(meta_bytes(), st.none() | st.sampled_from(KINDS))
@budget(60)
@example(b"null", None).via("found by the campaign: AttributeError")
@example(b'{"format": "warmstart/1", "kind": 5, "config": []}', None).via("wrong shape")
@example(b'{"format": "warmstart/1", "kind": "vectors"}', "vectors").via("no config")
@example(b'{"format": ["warmstart/1"]}', None).via("format of the wrong type")
def test_any_meta_reads_or_fails_naming_the_file(data: bytes, kind: str | None) -> None:
    with workdir() as d:
        (d / artifact.META_FILE).write_bytes(data)
        try:
            meta = artifact.read_meta(d, kind=kind)
        except WarmstartError as e:
            user_error(e, d)
            return
        # what every reader of metadata relies on
        assert meta["format"] == artifact.FORMAT
        assert isinstance(meta["kind"], str) and (kind is None or meta["kind"] == kind)
        assert isinstance(meta["config"], dict)
        assert meta.get("parent") is None or isinstance(meta["parent"], str)
        assert meta.get("data") is None or isinstance(meta["data"], dict)


@pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000])
def test_meta_nested_too_deep(tmp_path: Path, content: bytes) -> None:
    (tmp_path / artifact.META_FILE).write_bytes(content)
    with pytest.raises(WarmstartError) as e:
        artifact.read_meta(tmp_path)
    user_error(e.value, tmp_path)


def test_meta_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / artifact.META_FILE).mkdir()
    with pytest.raises(WarmstartError) as e:
        artifact.read_meta(tmp_path)
    user_error(e.value, tmp_path)


# -- vectors artifacts ---------------------------------------------------------------------


@st.composite
def keyed_vectors(draw: st.DrawFn) -> KeyedVectors:
    words = draw(st.lists(utf8_text, max_size=6, unique=True))
    dim = draw(st.integers(1, 4))
    floats = st.floats(width=32, allow_nan=True)
    vectors = draw(hnp.arrays(np.float32, (len(words), dim), elements=floats))
    counts = draw(st.none() | hnp.arrays(np.int64, len(words)))
    ngrams, min_n, max_n = None, 0, 0
    if draw(st.booleans()):
        bucket = draw(st.integers(1, 5))
        ngrams = draw(hnp.arrays(np.float32, (bucket, dim), elements=floats))
        min_n = draw(st.integers(1, 4))
        max_n = draw(st.integers(min_n, 6))
    return KeyedVectors(words, vectors, counts=counts, ngram_vectors=ngrams, min_n=min_n,
                        max_n=max_n)


def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def without_created(folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / artifact.META_FILE).read_text(encoding="utf-8"))
    meta.pop("created")
    return meta


@given(keyed_vectors(), st.booleans())
@budget(40)
def test_vectors_save_load_save_is_the_identity(kv: KeyedVectors, mmap: bool) -> None:
    with workdir() as d:
        kv.save(d / "a", config={"note": "x"})
        back = KeyedVectors.load(d / "a", mmap=mmap)
        assert back.words == kv.words and (back.min_n, back.max_n) == (kv.min_n, kv.max_n)
        for name in ("vectors", "counts", "ngram_vectors"):
            assert same(getattr(back, name), getattr(kv, name)), name
        back.save(d / "b", config={"note": "x"})
        for name in (WEIGHTS_FILE, VOCAB_FILE):
            assert (d / "a" / name).read_bytes() == (d / "b" / name).read_bytes(), name
        assert without_created(d / "a") == without_created(d / "b")
        assert not temporaries(d)


@functools.lru_cache(maxsize=1)
def saved_vectors() -> dict[str, bytes]:
    """The files of one small vectors artifact with subwords and counts."""
    kv = KeyedVectors(["a", "b", "c"], np.arange(6, dtype=np.float32).reshape(3, 2),
                      counts=np.array([3, 2, 1]), ngram_vectors=np.ones((4, 2), np.float32),
                      min_n=2, max_n=3)
    with workdir() as d:
        kv.save(d / "v")
        return {p.name: p.read_bytes() for p in (d / "v").iterdir()}


def safetensors_header(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


@st.composite
def damaged_vectors(draw: st.DrawFn) -> tuple[str, bytes | None]:
    """(file name, its new bytes, or None to remove it) for one file of the artifact."""
    files = saved_vectors()
    name = draw(st.sampled_from(sorted(files)))
    data = files[name]
    how = draw(st.sampled_from(("reshaped", "damaged", "missing")))
    if how == "missing":
        return name, None
    if how == "damaged":
        return name, draw(mutated(data))
    if name == WEIGHTS_FILE:  # a header of the wrong shape before the same tensor bytes
        header, body = safetensors_header(data)
        raw = json_text(draw(json_mutated(header))).encode()
        return name, struct.pack("<Q", len(raw)) + raw + draw(maybe_mutated(body))
    return name, json_text(draw(json_mutated(json.loads(data)))).encode()


@given(st.lists(damaged_vectors(), min_size=1, max_size=2), st.booleans())
@budget(80)
@example([("warmstart.json", b'{"format": "warmstart/1", "kind": "vectors", "config": '
                             b'{"dim": 2, "min_n": [2], "max_n": 3, "bucket": 4}}')],
         False).via("found by the campaign: TypeError from int([2])")
@example([("warmstart.json", b'{"format": "warmstart/1", "kind": "vectors", "config": '
                             b'{"min_n": "2", "max_n": true}}')], True).via("wrong types")
@example([("vocab.json", b'{"words": "abc"}')], False).via("words not a list")
def test_damaged_vectors_load_or_fail_naming_the_artifact(damage: list[tuple[str, bytes | None]],
                                                         mmap: bool) -> None:
    with workdir() as d:
        folder = d / "v"
        folder.mkdir()
        for name, data in saved_vectors().items():
            (folder / name).write_bytes(data)
        for name, data in damage:
            if data is None:
                (folder / name).unlink(missing_ok=True)
            else:
                (folder / name).write_bytes(data)
        try:
            kv = KeyedVectors.load(folder, mmap=mmap)
        except WarmstartError as e:
            user_error(e, folder)
            return
        assert len(kv.words) == len(kv.vectors) and kv.vectors.ndim == 2
        if len(kv):
            kv.most_similar(kv.vectors[0])


# -- tokenizers ----------------------------------------------------------------------------

texts = st.lists(utf8_text.filter(str.strip), min_size=1, max_size=12)


@given(texts, st.sampled_from(SUBWORD_MODELS), st.integers(6, 80), st.integers(1, 3),
       st.booleans(), utf8_text)
@budget(15)
def test_tokenizer_save_load_save_is_the_identity(corpus: list[str], model: str, vocab_size: int,
                                                  min_frequency: int, lowercase: bool,
                                                  probe: str) -> None:
    if model == "unigram":  # room for every character: see test_unigram_vocabulary_too_small...
        chars = set(unicodedata.normalize("NFKC", "".join(corpus)))
        vocab_size = max(vocab_size, len(chars) + 8)
    with workdir() as d:
        try:
            trained = train_tokenizer(corpus, out=d / "t", model=model,
                                      vocab_size=vocab_size, min_frequency=min_frequency,
                                      lowercase=lowercase, progress=False)
        except WarmstartError as e:
            user_error(e, d / "t", "--vocab-size", "--min-frequency")
            assert not (d / "t").exists() and not temporaries(d)
            return
        for source in (d / "t", d / "t" / TOKENIZER_FILE):
            loaded = load_tokenizer(source)
            assert loaded.encode(probe).ids == trained.encode(probe).ids
        loaded.save(str(d / "again.json"))
        first = (d / "t" / TOKENIZER_FILE).read_bytes()
        again = (d / "again.json").read_bytes()
        # The tokenizers library parses JSON floats without correct rounding, so a Unigram
        # score may move by one unit in the last place on the first load; then it stays.
        assert close(json.loads(again), json.loads(first))
        load_tokenizer(d / "again.json").save(str(d / "thrice.json"))
        assert (d / "thrice.json").read_bytes() == again
        meta = artifact.read_meta(d / "t", kind="tokenizer")
        assert meta["n_vocab"] == loaded.get_vocab_size()


def close(a: Any, b: Any) -> bool:
    """JSON values equal but for floats a few units in the last place apart."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@functools.lru_cache(maxsize=1)
def saved_tokenizers() -> dict[str, bytes]:
    """tokenizer.json of each subword model, trained on a few sentences."""
    corpus = ["the cat sat on the mat", "a dog and a cat", "naïve café 北京 text"] * 3
    out = {}
    with workdir() as d:
        for model in SUBWORD_MODELS:
            train_tokenizer(corpus, out=d / model, model=model, vocab_size=60,
                            min_frequency=1, progress=False)
            out[model] = (d / model / TOKENIZER_FILE).read_bytes()
    return out


@st.composite
def tokenizer_bytes(draw: st.DrawFn) -> bytes:
    data = saved_tokenizers()[draw(st.sampled_from(SUBWORD_MODELS))]
    if draw(st.booleans()):
        return json_text(draw(json_mutated(json.loads(data)))).encode()
    return draw(mutated(data))


@given(tokenizer_bytes(), st.sampled_from(("file", "folder", "artifact")), st.none() | meta_bytes())
@budget(60)
def test_damaged_tokenizer_loads_or_fails_naming_the_file(data: bytes, how: str,
                                                          meta: bytes | None) -> None:
    with workdir() as d:
        folder = d / "t"
        folder.mkdir()
        (folder / TOKENIZER_FILE).write_bytes(data)
        if how == "artifact":
            (folder / artifact.META_FILE).write_bytes(meta or json_text(a_meta()).encode())
        try:
            tok = load_tokenizer(folder / TOKENIZER_FILE if how == "file" else folder)
        except WarmstartError as e:
            user_error(e, folder)
            return
        assert tok.get_vocab_size() >= 0


def test_tokenizer_missing_or_a_folder(tmp_path: Path) -> None:
    for path in (tmp_path / "nothing", tmp_path):
        with pytest.raises(WarmstartError) as e:
            load_tokenizer(path)
        user_error(e.value, path)
    (tmp_path / TOKENIZER_FILE).mkdir()
    with pytest.raises(WarmstartError) as e:
        load_tokenizer(tmp_path)
    user_error(e.value, tmp_path)
    shutil.rmtree(tmp_path / TOKENIZER_FILE)


# The Unigram trainer of the tokenizers library either raises a plain Exception or never
# returns when --vocab-size is too small for the corpus's characters (vocabulary 6 or 7 on
# "abc def"), so this runs in a child process with a time limit.
UNIGRAM_TOO_SMALL = """
import sys
from warmstart.errors import WarmstartError
from warmstart.tokenize.subword import train_tokenizer
for corpus, size in ((["abc def"], 6), (["abc def"], 7)):
    try:
        train_tokenizer(corpus, out=sys.argv[1], model="unigram", vocab_size=size,
                        min_frequency=1, progress=False)
    except WarmstartError as e:
        assert "--vocab-size" in str(e), e
    else:
        raise AssertionError(f"vocabulary {size} accepted")
"""


@pytest.mark.xfail(strict=True, reason="tokenize/subword.py training (not loading, so not fixed "
                   "here): with --model unigram and a --vocab-size too small for the corpus's "
                   "characters, the tokenizers library raises a plain Exception (a traceback) "
                   "or never returns (vocabulary 7 on 'abc def')")
def test_unigram_vocabulary_too_small_for_the_characters(tmp_path: Path) -> None:
    # a hang ends in subprocess.TimeoutExpired (the child is killed): a failure too
    proc = subprocess.run([sys.executable, "-c", UNIGRAM_TOO_SMALL, str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert listing(tmp_path) == set()


# -- other artifact kinds: loaders outside this campaign's fixes ----------------------------


@pytest.fixture(scope="module")
def model_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A TF-IDF probe classifier and a one-layer encoder, made on a few lines of text."""
    from warmstart.corpus import Corpus
    from warmstart.pretraining import pretrain
    from warmstart.transfer.finetune import finetune

    root = tmp_path_factory.mktemp("artifacts")
    words = "the cat dog sat on mat red blue good bad film great awful".split()
    rng = np.random.default_rng(0)
    rows = [(" ".join(rng.choice(words, 6)), "pos" if i % 2 else "neg") for i in range(20)]
    (root / "train.csv").write_text("text,label\n" + "".join(f"{t},{c}\n" for t, c in rows))
    (root / "corpus.txt").write_text("".join(t + "\n" for t, _ in rows))
    finetune(str(root / "train.csv"), out=root / "classifier", body="tfidf", method="probe",
             progress=False)
    pretrain(Corpus(root / "corpus.txt"), out=root / "encoder", size="tiny", hidden=16,
             n_layers=1, n_heads=2, ffn=32, vocab_size=60, seq_len=16, max_steps=1,
             progress=False)
    return {"classifier": root / "classifier", "encoder": root / "encoder"}


def reshaped_copy(src: Path, dest: Path, key: str, value: Any) -> Path:
    """A copy of artifact ``src`` whose warmstart.json has config[key] set to ``value``
    (removed when ``value`` is ``...``)."""
    shutil.copytree(src, dest)
    meta = json.loads((dest / artifact.META_FILE).read_text(encoding="utf-8"))
    if value is ...:
        del meta["config"][key]
    else:
        meta["config"][key] = value
    (dest / artifact.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return dest


@pytest.mark.parametrize(("key", "value"), [("body", None), ("body", {}), ("tasks", ...),
                                            ("tasks", "x")])
def test_classifier_meta_of_the_wrong_shape(model_artifacts: dict[str, Path], tmp_path: Path,
                                            key: str, value: Any) -> None:
    from warmstart.transfer.classifier import Classifier

    folder = reshaped_copy(model_artifacts["classifier"], tmp_path / "c", key, value)
    with pytest.raises(WarmstartError) as e:
        Classifier.load(folder)
    user_error(e.value, folder)


@pytest.mark.parametrize(("key", "value"), [("model", None), ("model", []), ("model", ...)])
def test_encoder_meta_of_the_wrong_shape(model_artifacts: dict[str, Path], tmp_path: Path,
                                         key: str, value: Any) -> None:
    from warmstart.models.io import load_pretrained

    folder = reshaped_copy(model_artifacts["encoder"], tmp_path / "e", key, value)
    with pytest.raises(WarmstartError) as e:
        load_pretrained(folder)
    user_error(e.value, folder)


@pytest.mark.xfail(strict=True, reason="vectors/keyed.py saving and artifact.write_json_atomic "
                   "(not loading, so not fixed here): a word with a lone surrogate raises "
                   "UnicodeEncodeError from vocab.json's writer; save_word2vec refuses it")
def test_vectors_save_word_with_a_lone_surrogate(tmp_path: Path) -> None:
    kv = KeyedVectors(["a", "\ud800"], np.ones((2, 2), np.float32))
    with pytest.raises(WarmstartError):
        kv.save(tmp_path / "v")
    assert listing(tmp_path) == set()
