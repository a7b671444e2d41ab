"""Trained word vectors, separate from the trainer that made them.

:class:`KeyedVectors` holds the vocabulary (most frequent word first), the final vector of each
word and, for subword models, the hashed n-gram matrix that gives unseen words a vector. It
answers lookups, cosine similarities, nearest neighbours and analogies (batched: one matrix
multiply per block of queries), and saves to / loads from an artifact folder::

    model.safetensors   vectors (n, dim) float32, counts (n,) int64?, ngram_vectors (bucket, dim)?
    vocab.json          {"words": [...]}
    warmstart.json      kind "vectors"; config holds dim, min_n, max_n, bucket

    >>> kv = KeyedVectors(["king", "queen"], np.eye(2, dtype=np.float32))
    >>> kv.similarity("king", "queen")
    0.0
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warmstart import artifact
from warmstart.errors import WarmstartError
from warmstart.vectors.subwords import ngram_buckets

#: Levy & Goldberg (2014)'s epsilon in 3CosMul; gensim's most_similar_cosmul uses 1e-6.
COSMUL_EPS = 1e-3

# Queries times vocabulary rows held in one block of scores (float32): 16M cells = 64 MiB.
_BLOCK_CELLS = 1 << 24
# Columns per group in top_k's first pass.
_GROUP = 64

Query = str | np.ndarray


class KeyedVectors:
    """Word vectors with their vocabulary: lookups, similarities, neighbours, analogies, I/O.

    ``words`` must be ordered by decreasing frequency: ``restrict_vocab`` arguments keep the
    first N words. ``vectors`` are the final word vectors (for subword models already the mean
    of the word's own row and its n-gram rows). With ``ngram_vectors`` (one row per hash bucket)
    and ``min_n``/``max_n``, words outside the vocabulary get the mean of their n-gram rows, as in
    fastText and gensim's ``FastText``.

    Arrays are kept as given when they already have the right dtype (so a memory-mapped load
    stays memory-mapped); treat them as read-only.

    >>> kv = KeyedVectors(["a", "b", "c"], np.array([[1, 0], [1, 1], [0, 1]], np.float32))
    >>> kv.most_similar("a", topn=1)[0][0]
    'b'
    """

    def __init__(
        self,
        words: list[str],
        vectors: np.ndarray,
        *,
        counts: np.ndarray | None = None,
        ngram_vectors: np.ndarray | None = None,
        min_n: int = 0,
        max_n: int = 0,
    ) -> None:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array (n, dim), got shape {vectors.shape}")
        if vectors.dtype != np.float32:
            vectors = vectors.astype(np.float32)
        if len(words) != vectors.shape[0]:
            raise ValueError(f"{len(words)} words but {vectors.shape[0]} vector rows")
        self.words: list[str] = list(words)
        self.vectors: np.ndarray = vectors  # (n, dim) float32
        index: dict[str, int] = {}
        for i, w in enumerate(self.words):
            if not isinstance(w, str):
                raise ValueError(f"word #{i} is not a string: {w!r}")
            if index.setdefault(w, i) != i:
                raise ValueError(f"duplicate word {w!r} at positions {index[w]} and {i}")
        self._index = index
        if counts is not None:
            counts = np.asarray(counts)
            if counts.shape != (len(self.words),):
                raise ValueError(f"counts must have shape ({len(self.words)},), got {counts.shape}")
            if counts.dtype != np.int64:
                counts = counts.astype(np.int64)
        self.counts: np.ndarray | None = counts
        if ngram_vectors is not None:
            ngram_vectors = np.asarray(ngram_vectors)
            if (
                ngram_vectors.ndim != 2
                or ngram_vectors.shape[1] != self.dim
                or len(ngram_vectors) == 0
            ):
                raise ValueError(
                    f"ngram_vectors must have shape (bucket > 0, {self.dim}), got {ngram_vectors.shape}"
                )
            if ngram_vectors.dtype != np.float32:
                ngram_vectors = ngram_vectors.astype(np.float32)
            if not 0 < min_n <= max_n:
                raise ValueError(f"ngram_vectors need 0 < min_n <= max_n, got {min_n}, {max_n}")
        else:
            min_n = max_n = 0
        self.ngram_vectors: np.ndarray | None = ngram_vectors  # (bucket, dim) float32
        self.min_n = int(min_n)
        self.max_n = int(max_n)
        self._norms: np.ndarray | None = None
        self._normed: np.ndarray | None = None
        self._safe: np.ndarray | None = None

    # ----------------------------------------------------------------------------- lookups
    @property
    def dim(self) -> int:
        """The vector dimension."""
        return int(self.vectors.shape[1])

    @property
    def bucket(self) -> int:
        """Rows of the n-gram matrix (0 without subwords)."""
        return 0 if self.ngram_vectors is None else int(self.ngram_vectors.shape[0])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __repr__(self) -> str:
        sub = f", ngrams {self.min_n}-{self.max_n} in {self.bucket} buckets" if self.bucket else ""
        return f"KeyedVectors({len(self)} words, dim {self.dim}{sub})"

    def index(self, word: str) -> int:
        """Row of ``word`` in :attr:`vectors`; KeyError if it is not in the vocabulary."""
        try:
            return self._index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    def has_vector(self, word: str) -> bool:
        """True if :meth:`get_vector` can answer: in the vocabulary, or has n-grams to compose."""
        return word in self._index or self._ngram_ids(word).size > 0

    def _ngram_ids(self, word: str) -> np.ndarray:
        if self.ngram_vectors is None:
            return np.zeros(0, np.int32)
        _, ids = ngram_buckets([word], self.min_n, self.max_n, self.bucket)
        return ids

    def get_vector(self, word: str, norm: bool = False) -> np.ndarray:
        """A copy of the vector of ``word`` (unit length if ``norm``).

        Words outside the vocabulary get the mean of their n-gram rows when the model has
        subwords; otherwise they raise KeyError.
        """
        i = self._index.get(word)
        if i is not None:
            return np.array(self.normed[i] if norm else self.vectors[i])
        ids = self._ngram_ids(word)
        if ids.size == 0:
            if self.ngram_vectors is None:
                raise KeyError(
                    f"word {word!r} is not in the vocabulary ({len(self)} words) and these "
                    "vectors have no subword n-grams to compose it from"
                )
            raise KeyError(f"word {word!r} is not in the vocabulary and has no n-grams")
        assert self.ngram_vectors is not None
        vec = self.ngram_vectors[ids].sum(axis=0, dtype=np.float32) / np.float32(ids.size)
        return _unit(vec) if norm else vec

    def __getitem__(self, word: str) -> np.ndarray:
        return self.get_vector(word)

    @property
    def norms(self) -> np.ndarray:
        """L2 norm of each word vector, (n,) float32 (computed once)."""
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1).astype(np.float32)
        return self._norms

    @property
    def normed(self) -> np.ndarray:
        """Unit-length copy of :attr:`vectors`, (n, dim) float32; zero vectors stay zero."""
        if self._normed is None:
            self._normed = self.vectors / self._safe_norms()[:, None]
        return self._normed

    def _safe_norms(self) -> np.ndarray:
        """:attr:`norms` with zeros replaced by ones, so zero vectors score 0, not NaN."""
        if self._safe is None:
            self._safe = np.where(self.norms > 0, self.norms, np.float32(1.0)).astype(np.float32)
        return self._safe

    # ----------------------------------------------------------------------- similarities
    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words (0.0 if either vector is zero)."""
        return float(np.dot(self.get_vector(w1, norm=True), self.get_vector(w2, norm=True)))

    def _clip(self, restrict_vocab: int | None) -> int:
        if restrict_vocab is None:
            return len(self)
        if restrict_vocab < 1:
            raise ValueError(f"restrict_vocab must be >= 1, got {restrict_vocab}")
        return min(int(restrict_vocab), len(self))

    def _unit_query(self, q: Query) -> tuple[np.ndarray, int | None]:
        """Unit vector of a query (word or vector) and its vocabulary row, if it has one."""
        if isinstance(q, str):
            return self.get_vector(q, norm=True), self._index.get(q)
        v = np.asarray(q, dtype=np.float32)
        if v.shape != (self.dim,):
            raise ValueError(f"query vector must have shape ({self.dim},), got {v.shape}")
        return _unit(v), None

    def scores(self, queries: np.ndarray, *, restrict_vocab: int | None = None) -> np.ndarray:
        """Cosine of each query row against the first ``restrict_vocab`` words: (Q, R) float32.

        ``queries`` (Q, dim) must be unit length. Computed as ``queries @ vectors.T / norms``
        (gensim's order of operations, so near-ties break the same way).
        """
        r = self._clip(restrict_vocab)
        out = queries @ self.vectors[:r].T
        out /= self._safe_norms()[:r]
        return out

    def most_similar(
        self,
        positive: Query | Sequence[Query] = (),
        negative: Query | Sequence[Query] = (),
        *,
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """The ``topn`` words nearest to the mean of the positive minus the negative queries.

        As gensim: each query (a word, or a vector) is made unit length and weighted +1
        (positive) or -1 (negative); the mean is normalised and compared by cosine with the
        first ``restrict_vocab`` words; the query words themselves are never returned.
        Vectors are normalised too (gensim adds raw vectors as they are).

        >>> kv = KeyedVectors(["a", "b", "c"], np.array([[1, 0], [1, 1], [0, 1]], np.float32))
        >>> [w for w, _ in kv.most_similar(["a"], topn=2)]
        ['b', 'c']
        """
        pos = [positive] if isinstance(positive, (str, np.ndarray)) else list(positive)
        neg = [negative] if isinstance(negative, (str, np.ndarray)) else list(negative)
        if not pos and not neg:
            raise ValueError("most_similar needs at least one positive or negative query")
        mean = np.zeros(self.dim, np.float32)
        exclude: list[int] = []
        for q, weight in [(q, 1.0) for q in pos] + [(q, -1.0) for q in neg]:
            unit, row = self._unit_query(q)
            mean += np.float32(weight) * unit
            if row is not None:
                exclude.append(row)
        mean = _unit(mean / (len(pos) + len(neg)))
        scores = self.scores(mean[None, :], restrict_vocab=restrict_vocab)
        return self._ranked(scores, [exclude], topn)[0]

    def most_similar_batch(
        self, words: Sequence[str], *, topn: int = 10, restrict_vocab: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """:meth:`most_similar` of each word on its own, computed in blocks of queries.

        Each block of queries is one matrix multiply and one vectorised top-k selection
        (:func:`top_k`, built on ``np.argpartition``); the result for each word equals
        ``most_similar(word, topn=topn, restrict_vocab=restrict_vocab)`` (scores may differ in
        the last float32 bit).
        """
        if not words:
            return []
        r = self._clip(restrict_vocab)
        block = max(1, min(len(words), _BLOCK_CELLS // max(r, 1)))
        out: list[list[tuple[str, float]]] = []
        for start in range(0, len(words), block):
            chunk = words[start : start + block]
            units, rows = zip(*(self._unit_query(w) for w in chunk), strict=True)
            scores = self.scores(np.stack(units), restrict_vocab=r)
            out.extend(self._ranked(scores, [[i] if i is not None else [] for i in rows], topn))
        return out

    def _ranked(
        self, scores: np.ndarray, exclude: list[list[int]], topn: int
    ) -> list[list[tuple[str, float]]]:
        """Top ``topn`` (word, score) per row of ``scores`` (modified), skipping excluded rows."""
        if topn < 1:
            return [[] for _ in range(len(scores))]
        r = scores.shape[1]
        for q, rows in enumerate(exclude):
            rows = [i for i in rows if i < r]
            scores[q, rows] = -np.inf
        top = top_k(scores, topn)
        vals = np.take_along_axis(scores, top, axis=1)
        return [
            [(self.words[i], v) for i, v in zip(ids, row, strict=True) if v != -np.inf]
            for ids, row in zip(top.tolist(), vals.tolist(), strict=True)
        ]

    # --------------------------------------------------------------------------- analogies
    def analogy_scores(
        self,
        a: np.ndarray,
        b: np.ndarray,
        c: np.ndarray,
        *,
        method: str = "add",
        restrict_vocab: int | None = None,
    ) -> np.ndarray:
        """Scores of every candidate d for "a is to b as c is to d": (Q, R) float32.

        ``a``, ``b``, ``c`` are (Q, dim) unit vectors. ``method="add"`` is 3CosAdd, the cosine
        with normalise(b + c - a) (gensim's ``most_similar([b, c], [a])``); ``"mul"`` is 3CosMul
        (Levy & Goldberg 2014): with s(x, y) = (cos + 1) / 2, s(d, b) * s(d, c) / (s(d, a) + eps).
        The inputs are not excluded here; see :meth:`analogy`.
        """
        if method == "add":
            mean = (b + c) - a  # accumulated in gensim's order, float32
            mean = mean.astype(np.float64) / 3.0
            norm = np.linalg.norm(mean, axis=1, keepdims=True)
            mean = (mean / np.where(norm > 0, norm, 1.0)).astype(np.float32)
            return self.scores(mean, restrict_vocab=restrict_vocab)
        if method == "mul":
            r = self._clip(restrict_vocab)
            q = len(a)
            s = np.concatenate([a, b, c]) @ self.normed[:r].T  # (3Q, R): one multiply
            sa, sb, sc = s[:q], s[q : 2 * q], s[2 * q :]
            # (1+sb)/2 * (1+sc)/2 / ((1+sa)/2 + eps) = (1+sb)(1+sc) / (2 (1+sa+2eps)), in place
            sb += 1
            sc += 1
            sb *= sc
            sa += np.float32(1 + 2 * COSMUL_EPS)
            sa *= 2
            sb /= sa
            return sb
        raise ValueError(f"analogy method must be 'add' or 'mul', got {method!r}")

    def analogy(
        self,
        a: str,
        b: str,
        c: str,
        *,
        topn: int = 1,
        method: str = "add",
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """Words d such that ``a`` is to ``b`` as ``c`` is to d, best first, excluding a, b, c.

        >>> kv = KeyedVectors(
        ...     ["man", "woman", "king", "queen"],
        ...     np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32),
        ... )
        >>> kv.analogy("man", "king", "woman")[0][0]
        'queen'
        """
        units, rows = zip(*(self._unit_query(w) for w in (a, b, c)), strict=True)
        q = [u[None, :] for u in units]
        scores = self.analogy_scores(q[0], q[1], q[2], method=method, restrict_vocab=restrict_vocab)
        return self._ranked(scores, [[i for i in rows if i is not None]], topn)[0]

    # --------------------------------------------------------------------------------- I/O
    def save(
        self,
        out_dir: str | os.PathLike[str],
        *,
        config: dict[str, Any] | None = None,
        parent: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Path:
        """Write a ``vectors`` artifact folder at ``out_dir`` atomically; return its path."""
        with artifact.building(out_dir) as tmp:
            self.save_into(tmp, config=config, parent=parent, data=data)
        return Path(out_dir)

    def save_into(
        self,
        folder: str | os.PathLike[str],
        *,
        config: dict[str, Any] | None = None,
        parent: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the artifact files into an existing folder; return the metadata written.

        For callers that build the folder themselves (inside :func:`artifact.building`) and add
        files of their own (metrics, plots) to the same artifact.
        """
        from safetensors.numpy import save_file

        folder = Path(folder)
        tensors = {"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32)}
        if self.counts is not None:
            tensors["counts"] = np.ascontiguousarray(self.counts, dtype=np.int64)
        if self.ngram_vectors is not None:
            tensors["ngram_vectors"] = np.ascontiguousarray(self.ngram_vectors, dtype=np.float32)
        save_file(tensors, str(folder / artifact.WEIGHTS_FILE))
        artifact.write_json_atomic(folder / artifact.VOCAB_FILE, {"words": self.words})
        # The settings that made the vectors come first: vectors trained without subwords keep
        # the n-gram settings they were given, so that --config re-runs them as they were.
        resolved = {
            "dim": self.dim,
            "min_n": self.min_n,
            "max_n": self.max_n,
            "bucket": self.bucket,
            **(config or {}),
        }
        return artifact.write_meta(
            folder, kind="vectors", config=resolved, parent=parent, data=data
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False) -> KeyedVectors:
        """Load a ``vectors`` artifact folder written by :meth:`save`.

        With ``mmap=True`` the tensors are memory-mapped read-only from ``model.safetensors``
        (the file is opened with ``numpy.memmap`` at the offsets in its header), so several
        processes share one copy in the page cache; :attr:`normed` is still computed in memory.
        """
        folder = Path(path)
        meta = artifact.read_meta(folder, kind="vectors")
        cfg = meta.get("config") or {}
        model, vocab = folder / artifact.WEIGHTS_FILE, folder / artifact.VOCAB_FILE
        for f in (model, vocab):
            if not f.is_file():
                raise WarmstartError(
                    f"{folder}: vectors artifact is missing {f.name}; re-create it"
                )
        try:
            words = json.loads(vocab.read_text(encoding="utf-8"))["words"]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise TypeError("'words' is not a list of strings")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise WarmstartError(f"{vocab}: corrupt vocabulary file ({e})") from None
        tensors = _read_safetensors(model, mmap=mmap)
        if "vectors" not in tensors:
            raise WarmstartError(f"{model}: no 'vectors' tensor; not a vectors artifact")
        vectors = tensors["vectors"]
        if vectors.ndim != 2:
            raise WarmstartError(f"{model}: 'vectors' has shape {vectors.shape}, expected (n, dim)")
        if len(words) != vectors.shape[0]:
            raise WarmstartError(
                f"{folder}: {artifact.VOCAB_FILE} has {len(words)} words but {artifact.WEIGHTS_FILE} has "
                f"{vectors.shape[0]} vectors; the artifact is corrupt, re-create it"
            )
        ngrams = tensors.get("ngram_vectors")
        min_n, max_n = (_config_int(cfg, key, folder / artifact.META_FILE) for key in ("min_n", "max_n"))
        if ngrams is not None:
            if ngrams.ndim != 2 or ngrams.shape[1] != vectors.shape[1] or len(ngrams) == 0:
                raise WarmstartError(
                    f"{model}: 'ngram_vectors' has shape {ngrams.shape}, expected (bucket, {vectors.shape[1]})"
                )
            if not 0 < min_n <= max_n:
                raise WarmstartError(
                    f"{folder / artifact.META_FILE}: n-gram vectors present but config has "
                    f"min_n={min_n}, max_n={max_n}; the artifact is corrupt, re-create it"
                )
        counts = tensors.get("counts")
        if counts is not None and counts.shape != (len(words),):
            raise WarmstartError(
                f"{model}: 'counts' has shape {counts.shape}, expected ({len(words)},)"
            )
        try:
            return cls(
                words, vectors, counts=counts, ngram_vectors=ngrams, min_n=min_n, max_n=max_n
            )
        except ValueError as e:
            raise WarmstartError(f"{folder}: corrupt vectors artifact ({e})") from None


def _config_int(cfg: dict[str, Any], key: str, path: Path) -> int:
    """An integer setting of the artifact's config (absent or null: 0)."""
    value = cfg.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise WarmstartError(
            f"{path}: config {key} is {json.dumps(value)[:40]}, not an integer; the artifact "
            "is corrupt, re-create it"
        )
    return value


def _unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length, float32 (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest values of each row, best first: (Q, min(k, R)).

    ``np.argpartition`` over a whole (Q, R) block is slow, so for wide blocks the columns are
    cut into groups of ``_GROUP``: the k groups with the largest maxima hold the k largest
    values (each of those values lifts its own group's maximum above every other group's),
    and only their columns are partitioned.
    """
    q, r = scores.shape
    k = min(k, r)
    g = r // _GROUP
    if g <= 4 * k:
        return _top_k_exact(scores, k)
    gmax = scores[:, : g * _GROUP].reshape(q, g, _GROUP).max(axis=2)  # (Q, G), a view reduced
    if g * _GROUP < r:
        tail = scores[:, g * _GROUP :].max(axis=1, keepdims=True)
        gmax = np.concatenate([gmax, tail], axis=1)
    groups = np.argpartition(-gmax, k - 1, axis=1)[:, :k]  # (Q, k)
    cols = (groups[:, :, None] * _GROUP + np.arange(_GROUP)).reshape(q, -1)  # (Q, k * _GROUP)
    past_end = cols >= r  # the short tail group
    cols[past_end] = r - 1
    vals = np.take_along_axis(scores, cols, axis=1)
    vals[past_end] = -np.inf
    return np.take_along_axis(cols, _top_k_exact(vals, k), axis=1)


def _top_k_exact(scores: np.ndarray, k: int) -> np.ndarray:
    r = scores.shape[1]
    if k < r:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(r), scores.shape).copy()
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


_ST_DTYPES = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8",
    "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
    "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}  # fmt: skip


def _read_safetensors(path: Path, *, mmap: bool) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file, read into memory or memory-mapped read-only."""
    if not mmap:
        from safetensors.numpy import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # the Rust reader raises its own error types
            raise WarmstartError(
                f"{path}: corrupt tensor file ({e}); re-create the artifact"
            ) from None
    # The safetensors layout: u64 little-endian header size, JSON header, then the raw bytes.
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n <= size - 8:
                raise ValueError(f"header size {n} does not fit a {size}-byte file")
            header = json.loads(f.read(n))
        out: dict[str, np.ndarray] = {}
        for name, info in _tensor_entries(header):
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
            if end - begin != int(np.prod(shape)) * dtype.itemsize or 8 + n + end > size:
                raise ValueError(f"tensor {name!r} does not fit the file")
            if end == begin:
                out[name] = np.zeros(shape, dtype)
            else:
                out[name] = np.memmap(
                    path, dtype=dtype, mode="r", offset=8 + n + begin, shape=shape
                )
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WarmstartError(f"{path}: corrupt tensor file ({e}); re-create the artifact") from None


def _tensor_entries(header: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return [(k, v) for k, v in header.items() if k != "__metadata__"]
