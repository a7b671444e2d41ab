"""Intrinsic benchmarks for word vectors: analogies and word-pair similarity.

Both follow gensim's ``KeyedVectors.evaluate_word_analogies`` / ``evaluate_word_pairs`` rules,
so that figures are comparable with published gensim numbers:

- only the first ``restrict_vocab`` words (the most frequent) count;
- with ``case_insensitive``, words are upper-cased on both sides, and an upper-cased key stands
  for its most frequent original spelling;
- items with a word outside that vocabulary are skipped and counted as ``oov``.

Analogies are answered in blocks of questions, one matrix multiply per block, so the 19,544
Google questions over 30,000 words take seconds.

    >>> evaluate_analogies(kv, "questions-words.txt")["accuracy"]    # doctest: +SKIP
    0.7312

:func:`evaluate_vectors` is the ``warmstart vectors eval`` command: any number of both kinds
of file, on vectors loaded from an artifact folder or a word2vec file.

    >>> evaluate_vectors("vecs", pairs=["wordsim353.tsv"])          # doctest: +SKIP
    {'wordsim353.tsv': {'spearman': 0.61, 'pearson': 0.6, 'pairs': 340, 'oov': 13, ...}}
"""

from __future__ import annotations

import codecs
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from warmstart.errors import WarmstartError
from warmstart.vectors.formats import load_vectors
from warmstart.vectors.keyed import KeyedVectors

#: One file, or several.
Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

# Score cells (questions x vocabulary) per block: 16M float32 = 64 MiB per score matrix.
_BLOCK_CELLS = 1 << 24
_MAX_BLOCK = 1024
# gensim looks at the 5 best answers (after dropping a, b, c) for one that is not a case
# variant of a question word; the same depth keeps results identical.
_DEPTH = 5


def evaluate_vectors(
    model: KeyedVectors | str | os.PathLike[str],
    *,
    analogies: Paths = (),
    pairs: Paths = (),
    restrict_vocab: int = 30000,
    method: str = "add",
    case_sensitive: bool = False,
) -> dict[str, dict[str, Any]]:
    """Score the vectors of ``model`` (vectors, an artifact folder or a word2vec file) on
    analogy files (:func:`evaluate_analogies`, with ``restrict_vocab`` and ``method``) and
    word-pair files (:func:`evaluate_word_pairs`), as ``warmstart vectors eval`` does.

    Returns each file's result under its file name, analogy files first;
    :func:`format_table` lays them out. Words are compared case-insensitively, as gensim
    does, unless ``case_sensitive``.
    """
    analogy_files, pair_files = _paths(analogies), _paths(pairs)
    if not analogy_files and not pair_files:
        raise WarmstartError("give at least one --analogies or --pairs file")
    kv = load_vectors(model)
    results: dict[str, dict[str, Any]] = {}
    for path in analogy_files:
        results[Path(path).name] = evaluate_analogies(kv, path, restrict_vocab=restrict_vocab,
                                                      case_insensitive=not case_sensitive,
                                                      method=method)
    for path in pair_files:
        results[Path(path).name] = evaluate_word_pairs(kv, path,
                                                       case_insensitive=not case_sensitive)
    return results


def _paths(given: Paths) -> list[str | os.PathLike[str]]:
    """One path or several, as a list (a lone string is one path, not its characters)."""
    return [given] if isinstance(given, str | os.PathLike) else list(given)


def evaluate_analogies(
    kv: KeyedVectors,
    path: str | os.PathLike[str],
    *,
    restrict_vocab: int = 30000,
    case_insensitive: bool = True,
    method: str = "add",
) -> dict[str, Any]:
    """Accuracy on an analogy file (``questions-words.txt`` layout: ``: section`` lines, then
    ``a b c d`` lines, meaning a is to b as c is to d).

    The answer is the best word among the first ``restrict_vocab`` other than a, b and c, by
    3CosAdd (``method="add"``, as gensim) or 3CosMul (``"mul"``). Returns ``accuracy`` (correct
    over evaluated, 0.0 if none), ``correct``, ``total`` (evaluated), ``oov`` (skipped),
    ``oov_ratio`` (skipped over all questions, a fraction), and ``sections``: one dict per
    section with ``section``, ``correct``, ``total``, ``oov``, ``accuracy``.
    """
    if method not in ("add", "mul"):
        raise WarmstartError(f"method: must be 'add' (3CosAdd) or 'mul' (3CosMul), got {method!r}")
    n_vocab, ok, canon = _restricted_vocab(kv, restrict_vocab, case_insensitive)
    names: list[str] = []
    oov_per: list[int] = []
    quads: list[tuple[int, int, int, int]] = []
    section_of: list[int] = []
    for ln, line in _lines(path):
        if line.startswith(":"):
            names.append(line.lstrip(": ").strip())
            oov_per.append(0)
            continue
        if not line.strip():
            continue
        if not names:
            raise WarmstartError(
                f"{path}, line {ln}: question before any ': section' line; an analogy file "
                "starts with a section header such as ': capital-common-countries'"
            )
        parts = line.split()
        if len(parts) != 4:
            raise WarmstartError(
                f"{path}, line {ln}: expected 4 words (a b c d), found {len(parts)}"
            )
        if case_insensitive:
            parts = [w.upper() for w in parts]
        ids = [ok.get(w) for w in parts]
        if None in ids:
            oov_per[-1] += 1
            continue
        quads.append(tuple(ids))  # type: ignore[arg-type]
        section_of.append(len(names) - 1)

    q = np.array(quads, dtype=np.int64).reshape(-1, 4)
    correct = np.zeros(len(q), dtype=bool)
    per_block = _BLOCK_CELLS // (n_vocab * (3 if method == "mul" else 1))
    block = max(1, min(_MAX_BLOCK, per_block))
    normed = kv.normed
    for start in range(0, len(q), block):
        a, b, c, d = q[start : start + block].T
        scores = kv.analogy_scores(
            normed[a], normed[b], normed[c], method=method, restrict_vocab=n_vocab
        )
        rows = np.arange(len(a))
        for col in (a, b, c):
            scores[rows, col] = -np.inf
        correct[start : start + block] = _predict(scores, a, b, c, canon) == d

    sec = np.array(section_of, dtype=np.int64)
    n_ok = np.bincount(sec[correct], minlength=len(names))
    n_all = np.bincount(sec, minlength=len(names))
    sections = [
        {
            "section": name,
            "correct": int(n_ok[i]),
            "total": int(n_all[i]),
            "oov": oov_per[i],
            "accuracy": float(n_ok[i] / n_all[i]) if n_all[i] else 0.0,
        }
        for i, name in enumerate(names)
    ]
    n_correct, n_total, n_oov = int(correct.sum()), len(q), sum(oov_per)
    return {
        "accuracy": n_correct / n_total if n_total else 0.0,
        "correct": n_correct,
        "total": n_total,
        "oov": n_oov,
        "oov_ratio": n_oov / (n_total + n_oov) if n_total + n_oov else 0.0,
        "sections": sections,
    }


def _predict(
    scores: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, canon: np.ndarray
) -> np.ndarray:
    """gensim's answer per row of ``scores`` (a, b, c already at -inf), as a canonical row id.

    The first of the best ``_DEPTH`` candidates whose canonical word is not a, b or c (i.e. not
    a case variant of one); failing that the last candidate looked at; -1 if there is none.
    Usually one argmax pass settles every row; only rows whose best word is a case variant
    need another.
    """
    n = len(scores)
    pred = np.full(n, -1, dtype=np.int64)
    active = np.arange(n)
    sub = scores
    for _ in range(_DEPTH):
        best = sub.argmax(axis=1)
        present = sub[np.arange(len(active)), best] > -np.inf
        cand = canon[best]
        pred[active[present]] = cand[present]
        variant = (cand == a[active]) | (cand == b[active]) | (cand == c[active])
        again = present & variant
        if not again.any():
            break
        sub = sub[again]  # a copy of the few unsettled rows
        sub[np.arange(len(sub)), best[again]] = -np.inf
        active = active[again]
    return pred


def evaluate_word_pairs(
    kv: KeyedVectors,
    path: str | os.PathLike[str],
    *,
    restrict_vocab: int = 300000,
    case_insensitive: bool = True,
) -> dict[str, Any]:
    """Correlation of cosine similarities with human scores on a word-pair file.

    The file has ``w1 w2 score`` lines (tab- or space-separated; ``#`` comments and a header
    line without numbers are skipped), as WordSim-353 and SimLex-999. Returns ``spearman``
    (average ranks for ties, as scipy), ``pearson``, ``pairs`` (evaluated), ``oov`` (skipped),
    ``oov_ratio`` (a fraction). A correlation that is undefined (fewer than 2 pairs, or
    constant scores) is None.
    """
    _, ok, _ = _restricted_vocab(kv, restrict_vocab, case_insensitive)
    gold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    oov = 0
    seen_data = False
    for ln, line in _lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if not seen_data and not any(_is_number(f) for f in fields):
            seen_data = True  # a header line, e.g. "word1 word2 score"
            continue
        seen_data = True
        if len(fields) != 3 or not _is_number(fields[2]):
            raise WarmstartError(
                f"{path}, line {ln}: expected 'word1 word2 score' (tab- or space-separated), "
                f"found {stripped[:60]!r}"
            )
        w1, w2 = (fields[0].upper(), fields[1].upper()) if case_insensitive else fields[:2]
        i, j = ok.get(w1), ok.get(w2)
        if i is None or j is None:
            oov += 1
            continue
        gold.append(float(fields[2]))
        left.append(i)
        right.append(j)
    normed = kv.normed
    model = np.einsum("ij,ij->i", normed[left], normed[right]).astype(np.float64)
    human = np.array(gold, dtype=np.float64)
    n = len(human)
    return {
        "spearman": _correlation(stats.spearmanr, human, model),
        "pearson": _correlation(stats.pearsonr, human, model),
        "pairs": n,
        "oov": oov,
        "oov_ratio": oov / (n + oov) if n + oov else 0.0,
    }


def _correlation(
    method: Callable[[np.ndarray, np.ndarray], Any], x: np.ndarray, y: np.ndarray
) -> float | None:
    """``method``'s statistic (scipy.stats.spearmanr or pearsonr), or None where it is undefined:
    fewer than 2 pairs, or a side whose scores are all equal."""
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(method(x, y).statistic)


def _restricted_vocab(
    kv: KeyedVectors, restrict_vocab: int, case_insensitive: bool
) -> tuple[int, dict[str, int], np.ndarray]:
    """(R, key -> canonical row, canonical row of each of the first R words).

    A key is the word, upper-cased if ``case_insensitive``; its canonical row is its most
    frequent spelling among the first R words (gensim keeps the first occurrence).
    """
    if restrict_vocab < 1:
        raise WarmstartError(f"restrict_vocab: must be at least 1, got {restrict_vocab}")
    n = min(int(restrict_vocab), len(kv))
    if n == 0:
        raise WarmstartError("the vectors have an empty vocabulary; nothing to evaluate")
    ok: dict[str, int] = {}
    canon = np.empty(n, dtype=np.int64)
    for i, w in enumerate(kv.words[:n]):
        canon[i] = ok.setdefault(w.upper() if case_insensitive else w, i)
    return n, ok, canon


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of a UTF-8 file, with errors naming the file and line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise WarmstartError(f"{p}: no such file") from None
    except OSError as e:
        raise WarmstartError(f"{p}: cannot read ({e.strerror})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for ln, raw in enumerate(data.split(b"\n"), 1):
        try:
            yield ln, raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise WarmstartError(f"{p}, line {ln}: not valid UTF-8") from None


def _is_number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of benchmark results (name -> result of an evaluate_* function).

    >>> print(format_table({"wordsim353": {"spearman": 0.61, "pairs": 340, "oov": 13}}))
    benchmark   metric    value   coverage
    wordsim353  spearman  0.6100  96.3% (340/353)
    """
    rows = [("benchmark", "metric", "value", "coverage")]
    for name, r in results.items():
        if "accuracy" in r:
            metric, value, done = "accuracy", r["accuracy"], r["total"]
        elif "spearman" in r:
            metric, value, done = "spearman", r["spearman"], r["pairs"]
        else:
            raise ValueError(f"{name}: not an analogy or word-pair result: {sorted(r)}")
        every = done + r["oov"]
        cover = f"{100 * done / every:.1f}% ({done}/{every})" if every else "n/a (0/0)"
        rows.append((name, metric, "n/a" if value is None else f"{value:.4f}", cover))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
