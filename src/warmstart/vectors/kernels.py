"""The compiled word-vector kernels (``_kernels.c``), called through ctypes.

ctypes releases the GIL for the length of each call, so several Python threads train on
different chunks of the token stream at once, as gensim's Cython workers do. The C file
explains the arithmetic; this module only marshals arrays.
"""

from __future__ import annotations

import ctypes
import importlib.util
from dataclasses import dataclass

import numpy as np

MAX_EXP = 6.0
EXP_TABLE_SIZE = 1000

_f32p = ctypes.POINTER(ctypes.c_float)
_i64p = ctypes.POINTER(ctypes.c_int64)
_i32p = ctypes.POINTER(ctypes.c_int32)
_u64p = ctypes.POINTER(ctypes.c_uint64)


class _Params(ctypes.Structure):
    _fields_ = [
        ("syn0", _f32p), ("ngrams", _f32p), ("ng_off", _i64p), ("ng_ids", _i32p),
        ("syn1neg", _f32p), ("sample_int", _u64p), ("noise", _i64p), ("exp_table", _f32p),
        ("log_table", _f32p), ("n_noise", ctypes.c_int64), ("dim", ctypes.c_int64),
        ("window", ctypes.c_int64), ("negative", ctypes.c_int64), ("max_len", ctypes.c_int64),
        ("cbow", ctypes.c_int64), ("subwords", ctypes.c_int64),
    ]


class _Result(ctypes.Structure):
    _fields_ = [("loss", ctypes.c_double), ("n_pred", ctypes.c_int64), ("n_eff", ctypes.c_int64)]


def _load() -> ctypes.CDLL:
    spec = importlib.util.find_spec("warmstart.vectors._kernels")
    if spec is None or spec.origin is None:
        raise ImportError(
            "warmstart's compiled word-vector kernels are missing: reinstall the package "
            "(pip install -e . builds them; it needs a C compiler)"
        )
    lib = ctypes.CDLL(spec.origin)
    lib.ws_train_chunk.argtypes = [ctypes.POINTER(_Params), _i32p, ctypes.c_int64, ctypes.c_double,
                                   ctypes.c_double, ctypes.c_uint64, ctypes.POINTER(_Result)]
    lib.ws_train_chunk.restype = ctypes.c_int
    lib.ws_compose_all.argtypes = [ctypes.POINTER(_Params), ctypes.c_int64, _f32p]
    lib.ws_compose_all.restype = None
    lib.ws_build_noise_table.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int64, _i64p]
    lib.ws_build_noise_table.restype = ctypes.c_int
    lib.ws_sample_noise.argtypes = [_i64p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64, _i64p]
    lib.ws_sample_noise.restype = None
    lib.ws_fnv1a_many.argtypes = [ctypes.POINTER(ctypes.c_uint8), _i64p, ctypes.c_int64,
                                  ctypes.POINTER(ctypes.c_uint32)]
    lib.ws_fnv1a_many.restype = None
    lib.ws_format_rows.argtypes = [ctypes.POINTER(ctypes.c_uint8), _i64p, _f32p, ctypes.c_int64,
                                   ctypes.c_int64, ctypes.c_char_p]
    lib.ws_format_rows.restype = ctypes.c_int64
    lib.ws_parse_lines.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, _f32p,
                                   ctypes.c_int64, _i64p, ctypes.POINTER(ctypes.c_int8)]
    lib.ws_parse_lines.restype = ctypes.c_int64
    return lib


_lib = _load()


def _ptr(a: np.ndarray | None, kind: type) -> object:
    if a is None:
        return ctypes.POINTER(kind)()  # NULL
    if not a.flags.c_contiguous:
        raise ValueError("kernel arrays must be C-contiguous")
    return a.ctypes.data_as(ctypes.POINTER(kind))


def make_tables() -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid and log-sigmoid over ``[-MAX_EXP, MAX_EXP]`` in ``EXP_TABLE_SIZE`` steps."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


@dataclass
class Model:
    """The arrays one training run updates, and the settings the kernel needs."""

    syn0: np.ndarray  # (V, dim) float32
    syn1neg: np.ndarray  # (V, dim) float32
    sample_int: np.ndarray  # (V,) uint64
    noise: np.ndarray  # (V,) int64 alias table
    window: int
    negative: int
    max_len: int
    cbow: bool
    ngrams: np.ndarray | None = None  # (bucket, dim) float32
    ng_off: np.ndarray | None = None  # (V + 1,) int64
    ng_ids: np.ndarray | None = None  # int32

    def __post_init__(self) -> None:
        self._tables = make_tables()  # kept alive: the struct only holds their addresses
        self._params = _Params(
            _ptr(self.syn0, ctypes.c_float), _ptr(self.ngrams, ctypes.c_float),
            _ptr(self.ng_off, ctypes.c_int64), _ptr(self.ng_ids, ctypes.c_int32),
            _ptr(self.syn1neg, ctypes.c_float), _ptr(self.sample_int, ctypes.c_uint64),
            _ptr(self.noise, ctypes.c_int64), _ptr(self._tables[0], ctypes.c_float),
            _ptr(self._tables[1], ctypes.c_float), len(self.noise), self.syn0.shape[1],
            self.window, self.negative, self.max_len, int(self.cbow), int(self.ngrams is not None),
        )

    def train_chunk(self, ids: np.ndarray, alpha0: float, alpha1: float, seed: int) -> tuple[float, int, int]:
        """Train on one chunk of the stream; returns ``(loss_sum, n_predictions, n_effective_words)``."""
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        res = _Result()
        if _lib.ws_train_chunk(ctypes.byref(self._params), _ptr(ids, ctypes.c_int32), len(ids),
                               alpha0, alpha1, seed, ctypes.byref(res)) != 0:
            raise MemoryError("word-vector kernel could not allocate its buffers")
        return res.loss, res.n_pred, res.n_eff

    def vectors(self) -> np.ndarray:
        """Final word vectors: the input rows, composed with their n-grams when there are any."""
        if self.ngrams is None:
            return self.syn0
        out = np.empty_like(self.syn0)
        _lib.ws_compose_all(ctypes.byref(self._params), len(self.syn0), _ptr(out, ctypes.c_float))
        return out


def build_noise_table(weights: np.ndarray) -> np.ndarray:
    """Alias table of the distribution proportional to ``weights`` (Walker/Vose)."""
    w = np.ascontiguousarray(weights, dtype=np.float64)
    out = np.empty(len(w), dtype=np.int64)
    if _lib.ws_build_noise_table(_ptr(w, ctypes.c_double), len(w), _ptr(out, ctypes.c_int64)) != 0:
        raise MemoryError("could not allocate the noise table")
    return out


def sample_noise(noise: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` draws from a noise table (for tests and diagnostics)."""
    out = np.empty(n, dtype=np.int64)
    _lib.ws_sample_noise(_ptr(noise, ctypes.c_int64), len(noise), n, seed, _ptr(out, ctypes.c_int64))
    return out


def fnv1a_many(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """fastText's 32-bit hash of each byte string ``data[offsets[k]:offsets[k+1]]``."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.empty(len(offsets) - 1, dtype=np.uint32)
    _lib.ws_fnv1a_many(_ptr(data, ctypes.c_uint8), _ptr(offsets, ctypes.c_int64), len(out),
                       _ptr(out, ctypes.c_uint32))
    return out


def format_rows(words: bytes, offsets: np.ndarray, vectors: np.ndarray) -> bytes:
    """word2vec text lines ``word v1 .. vdim`` for each row (``%.9g``: exact for float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n, dim = vectors.shape
    out = ctypes.create_string_buffer(len(words) + n * (17 * dim + 1) + 1)
    w = np.frombuffer(words, dtype=np.uint8) if words else np.zeros(1, np.uint8)
    size = _lib.ws_format_rows(_ptr(w, ctypes.c_uint8), _ptr(offsets, ctypes.c_int64),
                               _ptr(vectors, ctypes.c_float), n, dim, out)
    return out.raw[:size]


def parse_lines(data: bytes, dim: int, out: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Parse text lines ``word v1 .. vdim`` of ``data`` into ``out`` (at most ``len(out)`` lines).

    Returns ``(lines seen, spans, status)``: per line ``spans[i] = (word start, word end, end of
    numbers)`` and ``status[i] == 0`` when ``out[i]`` holds exactly ``dim`` numbers.
    """
    rows = len(out)
    spans = np.zeros((rows, 3), dtype=np.int64)
    status = np.zeros(rows, dtype=np.int8)
    if not out.flags.c_contiguous or out.dtype != np.float32:
        raise ValueError("out must be a C-contiguous float32 array")
    k = _lib.ws_parse_lines(data, len(data), dim, _ptr(out, ctypes.c_float), rows,
                            _ptr(spans, ctypes.c_int64), _ptr(status, ctypes.c_int8))
    return k, spans, status
