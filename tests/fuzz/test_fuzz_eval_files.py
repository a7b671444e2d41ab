"""Fuzzing the readers of `vectors eval`'s files: analogy questions and word-pair scores.

Property: any file gives a result with counts that add up, or a WarmstartError naming the
file (and a line that exists).
"""

from __future__ import annotations

import math

import numpy as np
from fuzzkit import budget, cited_lines, maybe_mutated, user_error, workdir
from hypothesis import given
from hypothesis import strategies as st

from warmstart.errors import WarmstartError
from warmstart.evaluation.intrinsic import evaluate_analogies, evaluate_word_pairs
from warmstart.vectors.keyed import KeyedVectors

VOCAB = ["king", "queen", "man", "woman", "Paris", "France", "Rome", "Italy", "ß", "北京"]
KV = KeyedVectors(VOCAB, np.random.default_rng(0).standard_normal((len(VOCAB), 5)).astype(np.float32))
word = st.sampled_from((*VOCAB, "KING", "unknown", "SS", "")) | st.text(max_size=4)
score = st.floats(allow_nan=True).map(repr) | st.sampled_from(("7.5", "x", "", "1_0", "nan"))


@st.composite
def analogy_bytes(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 3)) == 0:
            lines.append(": " + draw(st.text(max_size=6)))
        else:
            lines.append(" ".join(draw(st.lists(word, min_size=3, max_size=5))))
    return draw(maybe_mutated("\n".join(lines).encode("utf-8")))


@st.composite
def pair_bytes(draw: st.DrawFn) -> bytes:
    lines = [draw(st.sampled_from(("", "# comment", "Word 1\tWord 2\tHuman (mean)")))]
    for _ in range(draw(st.integers(0, 6))):
        sep = draw(st.sampled_from(("\t", " ", "  ")))
        lines.append(sep.join([draw(word), draw(word), draw(score)]))
    return draw(maybe_mutated("\n".join(lines).encode("utf-8")))


@given(analogy_bytes(), st.integers(-1, 12), st.booleans(), st.sampled_from(("add", "mul", "x")))
@budget(40)
def test_analogy_files(data: bytes, restrict: int, case_insensitive: bool, method: str) -> None:
    with workdir() as d:
        path = d / "questions.txt"
        path.write_bytes(data)
        try:
            result = evaluate_analogies(KV, path, restrict_vocab=restrict,
                                        case_insensitive=case_insensitive, method=method)
        except WarmstartError as e:
            message = user_error(e, path, "restrict_vocab", "method")
            for line in cited_lines(message, path):
                assert 1 <= line <= data.count(b"\n") + 1, message
            return
        assert result["total"] == sum(s["total"] for s in result["sections"])
        assert 0.0 <= result["accuracy"] <= 1.0


@given(pair_bytes(), st.integers(-1, 12), st.booleans())
@budget(40)
def test_word_pair_files(data: bytes, restrict: int, case_insensitive: bool) -> None:
    with workdir() as d:
        path = d / "pairs.tsv"
        path.write_bytes(data)
        try:
            result = evaluate_word_pairs(KV, path, restrict_vocab=restrict,
                                         case_insensitive=case_insensitive)
        except WarmstartError as e:
            message = user_error(e, path, "restrict_vocab")
            for line in cited_lines(message, path):
                assert 1 <= line <= data.count(b"\n") + 1, message
            return
        for key in ("spearman", "pearson"):
            value = result[key]
            assert value is None or (math.isfinite(value) and -1.0 <= value <= 1.0), result
