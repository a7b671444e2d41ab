"""Intrinsic evaluation: exact counts on constructed cases, and agreement with gensim on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import warmstart.evaluation.intrinsic as intrinsic
from warmstart.errors import WarmstartError
from warmstart.evaluation.intrinsic import evaluate_analogies, evaluate_word_pairs, format_table
from warmstart.vectors.keyed import KeyedVectors

# Axes: male, female, royal, young, city, country, france, germany.
AXES = {name: i for i, name in enumerate(["m", "f", "r", "y", "city", "cty", "fr", "de"])}
FAMILY = {
    "man": "m", "woman": "f", "king": "m r", "queen": "f r", "boy": "m y", "girl": "f y",
    "paris": "city fr", "france": "cty fr", "berlin": "city de", "germany": "cty de",
}  # fmt: skip

ANALOGIES = """\
: family
man woman king queen
man woman boy girl
king queen man woman
Man Woman King Queen
man woman king unicorn
man king woman girl
: capital-world
Paris France Berlin Germany
berlin germany paris france
"""


def family_kv(words: list[str] | None = None) -> KeyedVectors:
    words = words or list(FAMILY)
    vectors = np.zeros((len(words), len(AXES)), np.float32)
    for i, w in enumerate(words):
        for axis in FAMILY[w].split():
            vectors[i, AXES[axis]] = 1.0
    return KeyedVectors(words, vectors)


@pytest.fixture
def analogy_file(tmp_path: Path) -> Path:
    path = tmp_path / "analogies.txt"
    path.write_text(ANALOGIES, encoding="utf-8")
    return path


# -- analogies on a constructed case ---------------------------------------------------------
@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy_counts(analogy_file: Path, method: str) -> None:
    r = evaluate_analogies(family_kv(), analogy_file, method=method)
    # 'unicorn' is out of vocabulary; 'man king woman girl' expects the wrong word (queen wins).
    assert (r["correct"], r["total"], r["oov"]) == (6, 7, 1)
    assert r["accuracy"] == pytest.approx(6 / 7)
    assert r["oov_ratio"] == pytest.approx(1 / 8)
    assert r["sections"] == [
        {"section": "family", "correct": 4, "total": 5, "oov": 1, "accuracy": 0.8},
        {"section": "capital-world", "correct": 2, "total": 2, "oov": 0, "accuracy": 1.0},
    ]


def test_analogy_case_sensitive(analogy_file: Path) -> None:
    r = evaluate_analogies(family_kv(), analogy_file, case_insensitive=False)
    # Capitalised questions no longer match the lower-case vocabulary.
    assert (r["correct"], r["total"], r["oov"]) == (4, 5, 3)


def test_analogy_restrict_vocab(analogy_file: Path) -> None:
    words = list(FAMILY)
    words.remove("queen")
    kv = family_kv([*words, "queen"])  # queen is now the rarest word
    r = evaluate_analogies(kv, analogy_file, restrict_vocab=len(kv) - 1)
    # Questions containing queen are skipped; 'man king woman girl' can no longer answer queen.
    assert (r["correct"], r["total"], r["oov"]) == (4, 4, 4)
    r = evaluate_analogies(kv, analogy_file, restrict_vocab=len(kv))
    assert (r["correct"], r["total"], r["oov"]) == (6, 7, 1)


def test_case_variant_of_a_question_word_is_skipped(tmp_path: Path) -> None:
    # 'C' (a rarer spelling of 'c') is the nearest word to b - a + c; gensim passes over case
    # variants of a, b and c when case-insensitive, and answers 'd'.
    words = ["a", "b", "c", "d", "C", "e"]
    vectors = np.array(
        [
            [1, 0, 0, 0, 0],
            [1, 0.05, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [0, 0.05, 1, 0, 0.3],
            [0, 0, 1, 0.01, 0],
            [0, 0, 0, 1, 1],
        ],
        np.float32,
    )
    kv = KeyedVectors(words, vectors)
    path = tmp_path / "q.txt"
    path.write_text(": s\na b c d\n")
    assert kv.analogy("a", "b", "c")[0][0] == "C"
    assert evaluate_analogies(kv, path)["correct"] == 1
    assert evaluate_analogies(kv, path, case_insensitive=False)["correct"] == 0


def test_analogies_are_answered_in_blocks(
    analogy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = evaluate_analogies(family_kv(), analogy_file)
    monkeypatch.setattr(intrinsic, "_BLOCK_CELLS", 1)  # one question per block
    assert evaluate_analogies(family_kv(), analogy_file) == whole


def test_analogy_file_errors(tmp_path: Path) -> None:
    kv = family_kv()
    with pytest.raises(WarmstartError, match=r"nope\.txt: no such file"):
        evaluate_analogies(kv, tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(": s\nman woman king queen\nman woman king\n")
    with pytest.raises(WarmstartError, match=r"bad\.txt, line 3: expected 4 words"):
        evaluate_analogies(kv, bad)
    bad.write_text("man woman king queen\n")
    with pytest.raises(WarmstartError, match=r"bad\.txt, line 1: question before any ': section'"):
        evaluate_analogies(kv, bad)
    bad.write_bytes(b": s\nman woman king \xff\n")
    with pytest.raises(WarmstartError, match=r"bad\.txt, line 2: not valid UTF-8"):
        evaluate_analogies(kv, bad)
    bad.write_text(": s\n")
    with pytest.raises(WarmstartError, match="method"):
        evaluate_analogies(kv, bad, method="sub")
    with pytest.raises(WarmstartError, match="restrict_vocab"):
        evaluate_analogies(kv, bad, restrict_vocab=0)


def test_empty_analogy_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    r = evaluate_analogies(family_kv(), path)
    assert (r["accuracy"], r["total"], r["oov"], r["oov_ratio"]) == (0.0, 0, 0, 0.0)
    assert r["sections"] == []


def test_chinese_analogies(tmp_path: Path) -> None:
    kv = KeyedVectors(
        ["广东", "粤剧", "浙江", "越剧"],
        np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], np.float32),
    )
    path = tmp_path / "zh.txt"
    path.write_text(": geography\n广东 粤剧 浙江 越剧\n", encoding="utf-8")
    assert evaluate_analogies(kv, path)["correct"] == 1


# -- word pairs on a constructed case ------------------------------------------------------------
PAIRS = """\
# a comment
Word 1\tWord 2\tHuman (mean)
man\twoman\t5.0
KING\tqueen\t8.0
boy girl 3.0
paris\tunicorn\t1.0
man\tparis\t0.5
"""


def test_word_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS, encoding="utf-8")
    kv = family_kv()
    r = evaluate_word_pairs(kv, path)
    assert (r["pairs"], r["oov"], r["oov_ratio"]) == (4, 1, pytest.approx(0.2))
    human = np.array([5.0, 8.0, 3.0, 0.5])
    model = np.array([0.0, 0.5, 0.5, 0.0])  # the cosines: two ties
    assert r["spearman"] == pytest.approx(np.corrcoef(_ranks(human), _ranks(model))[0, 1])
    assert r["pearson"] == pytest.approx(np.corrcoef(human, model)[0, 1])
    sensitive = evaluate_word_pairs(kv, path, case_insensitive=False)
    assert (sensitive["pairs"], sensitive["oov"]) == (3, 2)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks, the slow obvious way."""
    return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x])


def test_word_pairs_average_tied_ranks(tmp_path: Path) -> None:
    # Many ties on both sides: the human scores take 3 values, the cosines 3 (0, 0.5, 1/sqrt 2).
    words = list(FAMILY)
    rng = np.random.default_rng(0)
    pairs = [(words[i], words[j], float(rng.integers(0, 3)))
             for i, j in rng.integers(0, len(words), size=(50, 2))]
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{a}\t{b}\t{h}\n" for a, b, h in pairs), encoding="utf-8")
    kv = family_kv()
    human = np.array([h for _, _, h in pairs])
    model = np.array([kv.similarity(a, b) for a, b, _ in pairs], dtype=np.float64)
    r = evaluate_word_pairs(kv, path)
    assert r["pairs"] == 50
    assert r["spearman"] == pytest.approx(np.corrcoef(_ranks(human), _ranks(model))[0, 1])
    assert r["pearson"] == pytest.approx(np.corrcoef(human, model)[0, 1])


def test_word_pairs_constant_scores_have_no_correlation(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("man\twoman\t5\nking\tqueen\t5\nboy\tparis\t5\n")
    r = evaluate_word_pairs(family_kv(), path)
    assert (r["spearman"], r["pearson"], r["pairs"]) == (None, None, 3)


def test_word_pairs_undefined_correlation(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("man\twoman\t5\nzebra\tunicorn\t3\n")
    r = evaluate_word_pairs(family_kv(), path)
    assert (r["spearman"], r["pearson"], r["pairs"], r["oov"]) == (None, None, 1, 1)


def test_word_pair_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("man\twoman\t5\nman\tking\n")
    with pytest.raises(WarmstartError, match=r"pairs\.tsv, line 2: expected 'word1 word2 score'"):
        evaluate_word_pairs(family_kv(), path)
    path.write_text("man\twoman\t5\nman\tking\thigh\n")
    with pytest.raises(WarmstartError, match=r"pairs\.tsv, line 2"):
        evaluate_word_pairs(family_kv(), path)
    with pytest.raises(WarmstartError, match=r"missing\.tsv: no such file"):
        evaluate_word_pairs(family_kv(), tmp_path / "missing.tsv")


def test_format_table() -> None:
    table = format_table(
        {
            "questions-words.txt": {"accuracy": 0.71234, "total": 900, "oov": 100},
            "simlex999.txt": {"spearman": None, "pairs": 0, "oov": 999},
        }
    )
    assert table.splitlines() == [
        "benchmark            metric    value   coverage",
        "questions-words.txt  accuracy  0.7123  90.0% (900/1000)",
        "simlex999.txt        spearman  n/a     0.0% (0/999)",
    ]


# -- agreement with gensim on the real benchmark files ---------------------------------------
def structured_vectors(shared: Path, dim: int = 40, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Vectors for the words of the real benchmarks, with analogy structure plus noise.

    Each analogy section gets a relation vector r; the second word of each pair is the first
    plus r plus noise. Some words are dropped (OOV questions), and lower-case variants of
    capitalised words are added close to their originals (exercising the case rules).
    """
    rng = np.random.default_rng(seed)
    vec: dict[str, np.ndarray] = {}

    def base(w: str) -> np.ndarray:
        if w not in vec:
            vec[w] = rng.standard_normal(dim)
        return vec[w]

    relation = np.zeros(dim)
    for line in (shared / "en/wordsim/questions-words.txt").read_text().splitlines():
        if line.startswith(":"):
            relation = rng.standard_normal(dim) * 1.5
            continue
        a, b, c, d = line.split()
        for x, y in ((a, b), (c, d)):
            if y not in vec:
                vec[y] = base(x) + relation + rng.standard_normal(dim)
    for name in ("wordsim353.tsv", "simlex999.txt"):
        for line in (shared / "en/wordsim" / name).read_text().splitlines():
            if not line.startswith("#"):
                a, b, _ = line.split("\t")
                base(a.lower())
                base(b)
    words = list(vec)
    rng.shuffle(words)
    words = words[: int(len(words) * 0.95)]
    originals = [w for w in words if w.lower() not in vec][:300]
    variants = [w.lower() for w in originals]
    for w, original in zip(variants, originals, strict=True):
        vec[w] = vec[original] + 0.6 * rng.standard_normal(dim)
    words = words[:400] + variants + words[400:]
    return words, np.stack([vec[w] for w in words]).astype(np.float32)


@pytest.fixture(scope="module")
def both(shared_data: Path):
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors").KeyedVectors
    words, vectors = structured_vectors(shared_data)
    g = gensim_kv(vectors.shape[1])
    g.add_vectors(words, vectors)
    return KeyedVectors(words, vectors), g


@pytest.mark.parametrize("restrict", [30000, 700])
def test_analogies_agree_with_gensim(shared_data: Path, both, restrict: int) -> None:
    kv, g = both
    path = shared_data / "en/wordsim/questions-words.txt"
    score, sections = g.evaluate_word_analogies(str(path), restrict_vocab=restrict)
    ours = evaluate_analogies(kv, path, restrict_vocab=restrict)
    assert ours["accuracy"] == score
    total = sections[-1]
    assert ours["correct"] == len(total["correct"])
    assert ours["total"] == len(total["correct"]) + len(total["incorrect"])
    assert 0.2 < ours["accuracy"] < 0.95 and ours["oov"] > 0  # a test with teeth
    for mine, theirs in zip(ours["sections"], sections[:-1], strict=True):
        assert mine["section"] == theirs["section"]
        assert mine["correct"] == len(theirs["correct"])
        assert mine["total"] == len(theirs["correct"]) + len(theirs["incorrect"])


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
@pytest.mark.parametrize("restrict", [300000, 500])
def test_word_pairs_agree_with_gensim(shared_data: Path, both, name: str, restrict: int) -> None:
    kv, g = both
    path = shared_data / "en/wordsim" / name
    pearson, spearman, oov_pct = g.evaluate_word_pairs(str(path), restrict_vocab=restrict)
    ours = evaluate_word_pairs(kv, path, restrict_vocab=restrict)
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * ours["oov_ratio"] == pytest.approx(oov_pct)
