"""Sentence embeddings from any artifact that can make them: one vector per text.

    >>> from warmstart.embedding import embed, load_embedder
    >>> embed("runs/mlm", ["a wonderful film", "dull"]).shape           # doctest: +SKIP
    (2, 256)
    >>> model = load_embedder("all-MiniLM-L6-v2", precision="fp32")    # doctest: +SKIP
    >>> model.embed(["load once, embed often"])                        # doctest: +SKIP

What a vector is depends on the artifact:

* an **encoder** (ours, or a Hugging Face / sentence-transformers folder): its token states
  pooled as the artifact records (``mean``, ``cls`` or ``pooler``; mean when it records
  nothing), scaled to length 1 when it says so (a sentence-transformers pipeline ending in
  ``Normalize``), each text cut to its ``max_len`` pieces;
* **word vectors**: the mean of the vectors of the text's words, read with the tokenizer the
  vectors were trained with; a word outside the vocabulary gets its subword (character
  n-gram) vector where the artifact has n-grams, and is skipped otherwise;
* a **classifier**: its body's features, the vector its heads read (for an encoder body, as
  it pools; for a word-vector body, the mean of word and n-gram embeddings and the static
  channel, through its MLP if it has one). TF-IDF bodies and ensembles have no such vector.

A blank text (empty, or only whitespace) gives a row of zeros, as does a text none of whose
words have vectors, so rows line up with the input. Encoders batch texts by length and run
in bf16 where the hardware has it (``precision="auto"``; ``"fp32"`` for exact figures).
:func:`embed_file` streams a file or standard input to a ``.npy`` or ``.jsonl`` file in
bounded memory, whatever its length.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from warmstart.artifact import ONNX_KIND, atomic_file, folder_kind
from warmstart.config import PRECISIONS
from warmstart.errors import WarmstartError, with_article
from warmstart.models.onnx import OnnxModel
from warmstart.tokenize import make_tokenizer
from warmstart.train.precision import uses_bf16
from warmstart.transfer.bodies import Body, EncoderBody, TfidfBody, WordVectorBody, sorted_batches
from warmstart.transfer.classifier import Classifier, body_autocast, source_records
from warmstart.vectors.formats import load_vectors, vectors_tokenizer
from warmstart.vectors.keyed import KeyedVectors

#: What :func:`embed_file` writes, by the suffix of ``out``.
OUT_FORMATS = (".npy", ".jsonl")
#: Texts read, embedded and written at a time by :func:`embed_file` (memory stays flat).
CHUNK = 4096
# OOV words whose subword vector is kept, per word-vector model (then the cache starts over).
_OOV_CACHE = 65_536
DEVICES = ("auto", "cpu", "cuda")


class Embedder:
    """A loaded model that turns texts into vectors: ``embed(texts) -> (N, dim) float32``.

    Make one with :func:`load_embedder` (from a folder) or :meth:`from_classifier` (from a
    loaded classifier); :attr:`kind` is ``"encoder"``, ``"vectors"`` or ``"classifier"``.
    """

    kind: str
    dim: int
    normalized: bool = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32: one row per text, zeros for a blank one."""
        raise NotImplementedError

    def cut(self, texts: Sequence[str]) -> list[bool]:
        """Whether the model reads only part of each text (it is longer than ``max_len``)."""
        return [False] * len(texts)

    def describe(self) -> dict[str, Any]:
        """What the vectors are, for ``warmstart embed --json`` and the server's model list."""
        raise NotImplementedError

    @classmethod
    def from_classifier(cls, classifier: Classifier, *, batch_size: int = 64,
                        source: dict[str, Any] | None = None) -> Embedder:
        """The features of a loaded classifier's body (what its heads read)."""
        from warmstart.transfer.ensemble import Ensemble

        if isinstance(classifier, Ensemble):
            raise WarmstartError(
                f"this classifier is an ensemble of {len(classifier.members)} "
                f"({', '.join(classifier.members)}), each reading texts its own way: embed with "
                "one member's folder (members/NAME) instead")
        body = classifier.model.body
        if isinstance(body, TfidfBody):
            raise WarmstartError(
                "this classifier reads texts with TF-IDF: its features are sparse term weights "
                f"({body.dim:,} of them), not an embedding; embed with an encoder or word vectors")
        assert isinstance(body, EncoderBody | WordVectorBody)  # the other kinds of body
        return BodyEmbedder(body, kind="classifier", precision=classifier.precision,
                            batch_size=batch_size, source=source)


class BodyEmbedder(Embedder):
    """An encoder or a word-vector classifier body, batched by length."""

    def __init__(self, body: EncoderBody | WordVectorBody, *, kind: str, precision: str = "auto",
                 batch_size: int = 64, source: dict[str, Any] | None = None) -> None:
        if precision not in PRECISIONS:
            raise WarmstartError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
        if batch_size < 1:
            raise WarmstartError(f"--batch-size {batch_size}: must be 1 or more")
        self.body = body.eval()
        self.kind = kind
        self.dim = int(body.dim)
        self.precision = precision
        self.batch_size = batch_size
        self.normalized = isinstance(body, EncoderBody) and body.normalize
        self.source = source or {}

    @property
    def device(self) -> torch.device:
        return next(self.body.parameters()).device

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keep = np.array([i for i, t in enumerate(texts) if t.strip()], dtype=np.int64)
        if not len(keep):
            return out
        encoded = self.body.encode([texts[i] for i in keep])
        device = self.device
        autocast = body_autocast(self.body, device, self.precision)
        for rows, batch in sorted_batches(self.body, encoded, self.batch_size):
            with autocast:
                features = self.body({k: v.to(device) for k, v in batch.items()})  # (B, C)
            out[keep[rows]] = features.float().cpu().numpy()
        return out

    def cut(self, texts: Sequence[str]) -> list[bool]:
        return body_cuts(self.body, texts)

    def describe(self) -> dict[str, Any]:
        body = self.body
        bf16 = isinstance(body, EncoderBody) and uses_bf16(self.device, self.precision)
        info: dict[str, Any] = {"kind": self.kind, "dim": self.dim, "normalized": self.normalized,
                                "precision": "bf16" if bf16 else "fp32"}
        if isinstance(body, EncoderBody):
            info.update(body="encoder", pooling=body.pooling, max_len=body.max_len,
                        truncation=body.truncation)
        else:
            info.update(body="words", max_len=body.max_len, mlp=bool(body.hidden))
        return {**info, **self.source}


def body_cuts(body: Body, texts: Sequence[str]) -> list[bool]:
    """Whether ``body`` reads only the first ``max_len`` pieces (an encoder) or words of each
    text, as its ``encode`` cuts them."""
    if isinstance(body, EncoderBody):
        room = body.max_len - 2  # [CLS] and [SEP]
        enc = body.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) > room for e in enc]
    assert isinstance(body, WordVectorBody | TfidfBody)  # the other kinds of body
    return [len(body.tokenizer.tokenize(t)) > body.max_len for t in texts]


class VectorsEmbedder(Embedder):
    """The mean of a text's word vectors (subword vectors for words outside the vocabulary)."""

    kind = "vectors"

    def __init__(self, vectors: KeyedVectors, *, tokenizer: Any,
                 source: dict[str, Any] | None = None) -> None:
        self.vectors = vectors
        self.tokenizer = tokenizer
        self.dim = vectors.dim
        self.source = source or {}
        self._oov: dict[str, np.ndarray | None] = {}

    def word_vector(self, word: str) -> np.ndarray | None:
        """The vector a word adds to a text's mean: its own, its subwords', or None."""
        if word in self.vectors:
            return self.vectors.vectors[self.vectors.index(word)]
        if word not in self._oov:
            if len(self._oov) >= _OOV_CACHE:
                self._oov.clear()
            try:
                self._oov[word] = self.vectors.get_vector(word) if self.vectors.bucket else None
            except KeyError:  # no n-grams to compose it from
                self._oov[word] = None
        return self._oov[word]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            found = [v for v in map(self.word_vector, self.tokenizer.tokenize(text)) if v is not None]
            if found:
                out[row] = np.mean(found, axis=0, dtype=np.float32)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim, "normalized": False, "words": len(self.vectors),
                "subwords": bool(self.vectors.bucket), "tokenizer": self.tokenizer.config(),
                **self.source}


class OnnxEmbedder(Embedder):
    """An ONNX export (an encoder's embeddings, or a classifier's features) run by onnxruntime."""

    def __init__(self, runtime: OnnxModel, *, source: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.kind = "classifier" if runtime.is_classifier else "encoder"
        self.dim = runtime.dim
        self.normalized = runtime.normalize
        self.source = source or {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if keep:
            out[keep] = self.runtime.embed([texts[i] for i in keep])
        return out

    def cut(self, texts: Sequence[str]) -> list[bool]:
        return self.runtime.cut(texts)

    def describe(self) -> dict[str, Any]:
        r = self.runtime
        return {"kind": self.kind, "dim": self.dim, "normalized": self.normalized,
                "precision": r.quantize or "fp32", "runtime": "onnxruntime", "body": "encoder",
                "pooling": r.pooling, "max_len": r.max_len, "truncation": r.truncation,
                **self.source}


def pick_device(device: str) -> torch.device:
    """``auto``: the GPU where there is one, else the CPU."""
    if device not in DEVICES:
        raise WarmstartError(f"--device {device}: use one of {', '.join(DEVICES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise WarmstartError("--device cuda: no GPU is available here; use --device cpu")
    return torch.device(device)


def load_embedder(
    path: str | os.PathLike[str], *, precision: str = "auto", batch_size: int = 64,
    device: str = "auto", threads: int | None = None,
) -> Embedder:
    """The embedder of folder ``path``: an encoder or classifier artifact, a vectors artifact,
    a Hugging Face / sentence-transformers folder (safetensors weights only), or an ONNX
    export (``warmstart model export --format onnx``), run by onnxruntime.

    ``precision`` (auto, bf16, fp32) and ``batch_size`` (texts per forward pass) apply to
    encoders; ``device`` (auto, cpu, cuda) is where a torch model runs; ``threads`` are
    onnxruntime's (default: one per physical core).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{folder}: no such model folder; give an encoder, classifier or "
                             "vectors artifact, or a Hugging Face model folder")
    if precision not in PRECISIONS:
        raise WarmstartError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    kind = folder_kind(folder)
    source = {"path": str(folder)}
    if kind == ONNX_KIND and device == "cuda":
        raise WarmstartError(f"{folder}: an ONNX export runs on the CPU with onnxruntime; "
                             "use --device cpu (or auto)")
    where = pick_device(device)
    if kind == "vectors":
        # Memory-mapped: several server workers share one copy in the page cache.
        name, lowercase = vectors_tokenizer(folder)
        return VectorsEmbedder(load_vectors(folder, mmap=True),
                               tokenizer=make_tokenizer(name, lowercase=lowercase), source=source)
    if kind == ONNX_KIND:
        return OnnxEmbedder(OnnxModel.load(folder, threads=threads, batch_size=batch_size),
                            source=source)
    if kind == "classifier":
        clf = Classifier.load(folder, precision=precision)
        clf.model.to(where)
        clf.predict_only()
        try:
            return Embedder.from_classifier(clf, batch_size=batch_size, source=source)
        except WarmstartError as e:
            raise WarmstartError(f"{folder}: {e}") from None
    if kind != "encoder":
        raise WarmstartError(
            f"{folder}: is {with_article(repr(kind))} artifact, which makes no sentence "
            "vectors; give an encoder, classifier or vectors artifact, or an ONNX export")
    body = encoder_body(folder).to(where)
    body.hold_bf16_weights(precision)
    return BodyEmbedder(body, kind="encoder", precision=precision, batch_size=batch_size,
                        source=source)


def encoder_body(path: str | os.PathLike[str]) -> EncoderBody:
    """The encoder of folder ``path`` pooled as it records (mean pooling when it records
    nothing); a sentence-transformers pipeline warmstart cannot run is refused."""
    from warmstart.models.embedding_setup import EmbeddingSetup
    from warmstart.models.hf_mapping import MODULES_FILE
    from warmstart.models.io import load_pretrained
    from warmstart.models.transformer import Encoder

    folder = Path(path)
    loaded = load_pretrained(folder, kind="encoder")
    if loaded.tokenizer is None:
        raise WarmstartError(f"{folder}: the encoder has no tokenizer.json (or vocab.txt)")
    setup = loaded.embedding
    if setup is None and (folder / MODULES_FILE).is_file():
        raise WarmstartError(
            f"{folder / MODULES_FILE}: a sentence-transformers pipeline warmstart cannot run "
            "(only Transformer, Pooling by mean or CLS, and optionally Normalize)")
    setup = setup or EmbeddingSetup()
    assert isinstance(loaded.model, Encoder)
    return EncoderBody(loaded.model, loaded.tokenizer, pooling=setup.pooling,
                       max_len=setup.max_len, truncation=setup.truncation,
                       normalize=setup.normalize)


def embed(
    model: str | os.PathLike[str] | Embedder, texts: Sequence[str], *, precision: str = "auto",
    batch_size: int = 64, device: str = "auto",
) -> np.ndarray:
    """(N, dim) float32 sentence vectors of ``texts`` from ``model`` (a folder, or an
    :class:`Embedder` already loaded); a blank text gives a row of zeros.

        >>> vecs = embed("runs/vectors", ["good film", "bad film"])      # doctest: +SKIP
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    embedder = model if isinstance(model, Embedder) else load_embedder(
        model, precision=precision, batch_size=batch_size, device=device)
    return embedder.embed(list(texts))


# -- files -----------------------------------------------------------------------------------

# A .npy header of fixed size (a multiple of 64, as numpy aligns its own): written with a
# zero row count first and again, with the count, once the last row is written, so a file of
# any length streams out in one pass, standard input included.
_NPY_HEADER_BYTES = 128


def npy_header(rows: int, dim: int) -> bytes:
    """The header of a C-ordered little-endian float32 (rows, dim) ``.npy`` file (format 1.0)."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}"
    room = _NPY_HEADER_BYTES - 10  # magic (6), version (2), header length (2)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + (text.ljust(room - 1) + "\n").encode("latin1")


def _jsonl_row(line: int, row: np.ndarray | None) -> bytes:
    # 9 significant digits: a float32 reads back exactly.
    vec = "null" if row is None else "[" + ",".join(map("{:.9g}".format, row.tolist())) + "]"
    return f'{{"line": {line}, "embedding": {vec}}}\n'.encode()


def _chunks(records: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def embed_file(
    model: str | os.PathLike[str] | Embedder, source: str | os.PathLike[str], *,
    out: str | os.PathLike[str], text_field: str = "text", precision: str = "auto",
    batch_size: int = 64, device: str = "auto", progress: bool = True,
) -> dict[str, Any]:
    """Embed every line of ``source`` (a text, JSONL or CSV/TSV file, or ``"-"`` for standard
    input) into ``out``, one row per line in order; returns a summary.

    ``out`` ending in ``.npy``: a float32 (lines, dim) array, a blank line's row all zeros;
    ``.jsonl``: ``{"line": N, "embedding": [...]}`` per line, ``null`` for a blank one. Lines
    are read, embedded and written :data:`CHUNK` at a time, so memory stays flat on any
    input; ``out`` appears (by a rename) only once it is complete.
    """
    from tqdm import tqdm

    out_path = Path(out)
    if out_path.suffix not in OUT_FORMATS:
        raise WarmstartError(f"--out {out}: name a .npy or .jsonl file")
    if not out_path.parent.is_dir():
        raise WarmstartError(f"--out {out}: no folder {out_path.parent} to write it in")
    if str(source) != "-":
        from warmstart.corpus import Corpus

        Corpus([source], text_field=text_field)  # a missing file is refused before loading
    embedder = model if isinstance(model, Embedder) else load_embedder(
        model, precision=precision, batch_size=batch_size, device=device)
    start = time.perf_counter()
    rows = blank = 0
    npy = out_path.suffix == ".npy"
    records = source_records(source, text_field=text_field)
    bar = tqdm(unit=" lines", disable=not progress, mininterval=0.5, delay=2.0, desc="embed")
    with atomic_file(out_path) as f:
        if npy:
            f.write(npy_header(0, embedder.dim))
        for chunk in _chunks(records, CHUNK):
            texts = [t for _, t in chunk]
            vectors = embedder.embed(texts)
            if npy:
                f.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            else:
                f.write(b"".join(_jsonl_row(n, v if t.strip() else None)
                                 for (n, t), v in zip(chunk, vectors, strict=True)))
            rows += len(chunk)
            blank += sum(not t.strip() for t in texts)
            bar.update(len(chunk))
        bar.close()
        if rows == 0:
            where = "standard input" if str(source) == "-" else str(source)
            raise WarmstartError(f"{where}: no lines to embed; give one text per line")
        if npy:
            _finish_npy(f, rows, embedder.dim)
    seconds = time.perf_counter() - start
    return {"out": str(out), "rows": rows, "blank": blank, "dim": embedder.dim,
            "kind": embedder.kind, "normalized": embedder.normalized,
            "seconds": round(seconds, 3), "rows_per_second": round(rows / max(seconds, 1e-9), 1)}


def _finish_npy(f: BinaryIO, rows: int, dim: int) -> None:
    f.flush()
    f.seek(0)
    f.write(npy_header(rows, dim))
    f.seek(0, os.SEEK_END)

