"""Tokenized shards: a corpus encoded once into memory-mapped token arrays, cached on disk.

Transformer pretraining reads the same corpus for many steps and often over several runs, so
:func:`build_shards` tokenizes it once with a Hugging Face ``tokenizers.Tokenizer`` and keeps
the ids in a cache folder named by a hash of everything that decides them (the corpus files
and settings, the tokenizer, the validation split). A later run with the same inputs opens
the folder instead of tokenizing again. Texts are streamed in batches and their ids appended
to the shard files, so neither building nor training ever holds the corpus in memory.

    >>> train, valid = build_shards(corpus, tok, cache_dir="cache")           # doctest: +SKIP
    >>> first = train.doc(0)                                                  # doctest: +SKIP

:mod:`warmstart.sequences` cuts the documents into the rows pretraining reads.

A cache folder holds:

* ``tokens-00000.bin``, ``tokens-00001.bin``, ...: the concatenated token ids of all kept
  documents, raw little-endian ``uint16`` (vocabularies up to 65535) or ``uint32``, at most
  ``shard_tokens`` per file. A document may continue from one file into the next.
* ``docs.npy``: ``int64`` offsets of each document into that stream (``n_docs + 1`` values).
* ``split.npy``: ``uint8`` per document, 0 for training and 1 for validation.
* ``shards.json``: format version, dtype, counts, per-file token counts and provenance.

The folder is built under a temporary name beside its final one and renamed when complete,
so an interrupted build never leaves a folder that a later run would take as finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tokenizers
from tqdm.auto import tqdm

from warmstart import artifact
from warmstart.corpus import Corpus, text_batches
from warmstart.errors import WarmstartError

FORMAT = "warmstart-shards/1"
META_FILE = "shards.json"
DOCS_FILE = "docs.npy"
SPLIT_FILE = "split.npy"
SHARD_NAME = "tokens-{:05d}.bin"
#: Values in ``split.npy``.
TRAIN, VALID = 0, 1
_SPLIT_NAMES = {TRAIN: "train", VALID: "valid"}
#: Ids below this fit in the compact ``uint16`` files.
_UINT16_VOCAB = 65535

_BATCH = 1000  # texts per encode_batch call: the Rust side runs them in parallel
# ... and at most about this many characters: a batch in flight takes 30 to 130 bytes per
# character (the more, the longer its documents), so a batch of long documents stops early.
_BATCH_CHARS = 1 << 20


# -- building ------------------------------------------------------------------------------


def build_shards(
    corpus: Corpus,
    tokenizer: tokenizers.Tokenizer,
    *,
    cache_dir: str | os.PathLike[str],
    valid_fraction: float = 0.01,
    max_valid_docs: int = 2000,
    shard_tokens: int = 50_000_000,
    progress: bool = True,
) -> tuple[TokenShards, TokenShards]:
    """Tokenize ``corpus`` into a cache folder under ``cache_dir`` (or reuse it); return views.

    Returns ``(train, valid)``. The cache folder is ``cache_dir / <key>``, where the key hashes
    the corpus files (names in order, sizes, contents: not modification times), ``text_field`` and
    ``has_header``, the tokenizer's JSON, ``valid_fraction`` and ``max_valid_docs``; when a
    complete folder for the key exists, it is opened without tokenizing anything.
    ``shard_tokens`` only sets how the ids are cut into files, so it is not part of the key.

    Documents are encoded without special tokens (the sequence views add them) and without
    the tokenizer's padding or truncation; documents that encode to no tokens are dropped.
    The validation split is ``valid_fraction`` of the documents, at most ``max_valid_docs``,
    spread evenly over the corpus (at least one document when there are two or more and both
    settings are above 0; a one-document corpus has an empty validation split).

    Raises :class:`~warmstart.errors.WarmstartError` for bad settings, an unusable
    ``cache_dir`` or a corpus without text (and passes on the corpus's own errors).
    """
    _check_options(valid_fraction, max_valid_docs, shard_tokens)
    tok = _plain(tokenizer)
    tok_json = tok.to_str()
    key = _cache_key(corpus, tok_json, valid_fraction=valid_fraction, max_valid_docs=max_valid_docs)
    cache = Path(os.path.expanduser(os.fspath(cache_dir)))
    final = cache / key[:16]
    if final.exists():
        try:
            shards = load_shards(final)
        except WarmstartError as e:
            if progress:
                tqdm.write(f"tokenizing again: the cached token shards are unusable: {e}")
        else:
            if progress:
                tqdm.write(f"using the cached token shards in {final}")
            return shards

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WarmstartError(
            f"cache_dir (--cache-dir) {cache}: exists and is not a folder; choose another path"
        ) from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".building", dir=cache))
    try:
        meta = _tokenize(corpus, tok, tmp, shard_tokens=shard_tokens, progress=progress)
        n_docs = meta["n_docs"]
        split = np.zeros(n_docs, dtype=np.uint8)
        split[_valid_docs(n_docs, valid_fraction, max_valid_docs)] = VALID
        _save_npy(tmp / SPLIT_FILE, split)
        meta.update(
            n_valid_docs=int(split.sum()),
            valid_fraction=valid_fraction,
            max_valid_docs=max_valid_docs,
            key=key,
            corpus={
                **corpus.describe(),
                "text_field": corpus.text_field,
                "has_header": corpus.has_header,
            },
            tokenizer_sha256=hashlib.sha256(tok_json.encode()).hexdigest(),
        )
        # shards.json last: a folder without it is never taken for a finished one.
        artifact.write_json_atomic(tmp / META_FILE, meta)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_shards(final)


def _check_options(valid_fraction: float, max_valid_docs: int, shard_tokens: int) -> None:
    if not isinstance(valid_fraction, (int, float)) or not 0 <= valid_fraction < 1:
        raise WarmstartError(
            f"valid_fraction (--valid-fraction) {valid_fraction!r}: must be at least 0 and "
            "below 1; 0.01 is typical, 0 means no validation split"
        )
    if not isinstance(max_valid_docs, int) or max_valid_docs < 0:
        raise WarmstartError(
            f"max_valid_docs (--max-valid-docs) {max_valid_docs!r}: must be an integer of 0 or more"
        )
    if not isinstance(shard_tokens, int) or shard_tokens < 1:
        raise WarmstartError(
            f"shard_tokens (--shard-tokens) {shard_tokens!r}: must be a positive integer; "
            "50000000 is typical"
        )


def _plain(tokenizer: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
    """A copy of ``tokenizer`` that neither pads nor truncates.

    A tokenizer.json taken from a model folder often pads or truncates to the model's length;
    either would put pad ids into the stream or cut documents short.
    """
    tok = tokenizers.Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    return tok


def _vocab_size(tok: tokenizers.Tokenizer) -> int:
    """One more than the largest id the tokenizer can produce."""
    # A hand-made vocabulary may skip ids, so the size alone can be too small.
    vocab = tok.get_vocab(with_added_tokens=True)
    return max(tok.get_vocab_size(with_added_tokens=True), max(vocab.values(), default=-1) + 1)


def _cache_key(corpus: Corpus, tok_json: str, *, valid_fraction: float, max_valid_docs: int) -> str:
    """The hex sha256 naming the cache folder of these inputs."""
    spec = {
        "format": FORMAT,
        "fingerprint": corpus.describe()["fingerprint"],
        # The fingerprint sorts the files, but their order is the order of the token stream.
        "files": [os.path.abspath(f) for f in corpus.files],
        "text_field": corpus.text_field,
        "has_header": corpus.has_header,
        "tokenizer": hashlib.sha256(tok_json.encode()).hexdigest(),
        "valid_fraction": float(valid_fraction),
        "max_valid_docs": int(max_valid_docs),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


class _ShardWriter:
    """Appends ids to ``tokens-NNNNN.bin`` files, starting a new one every ``shard_tokens``."""

    def __init__(self, folder: Path, dtype: np.dtype[Any], shard_tokens: int) -> None:
        self.folder = folder
        self.dtype = dtype
        self.shard_tokens = shard_tokens
        self.counts: list[int] = []  # tokens in each file so far
        self._file: BinaryIO | None = None

    def write(self, ids: np.ndarray) -> None:
        while ids.size:
            if self._file is None or self.counts[-1] == self.shard_tokens:
                self._next()
            assert self._file is not None
            part = ids[: self.shard_tokens - self.counts[-1]]
            self._file.write(part.astype(self.dtype).tobytes())
            self.counts[-1] += part.size
            ids = ids[part.size :]

    def _next(self) -> None:
        self.close()
        self._file = open(self.folder / SHARD_NAME.format(len(self.counts)), "wb")
        self.counts.append(0)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def _tokenize(
    corpus: Corpus, tok: tokenizers.Tokenizer, folder: Path, *, shard_tokens: int, progress: bool
) -> dict[str, Any]:
    """Encode every document into shard files and ``docs.npy`` in ``folder``; return counts."""
    vocab_size = _vocab_size(tok)
    dtype = np.dtype("<u2" if vocab_size <= _UINT16_VOCAB else "<u4")
    # Fast variant (no character offsets) where this tokenizers version has it.
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    writer = _ShardWriter(folder, dtype, shard_tokens)
    lengths: list[np.ndarray] = []  # per batch: O(n_docs) in all, never O(n_tokens)
    n_read = n_tokens = 0
    bar = tqdm(desc="tokenize", unit=" docs", disable=not progress, mininterval=0.5, smoothing=0.1)
    started = time.perf_counter()
    batches = text_batches(corpus, max_docs=_BATCH, max_chars=_BATCH_CHARS)
    # Encoding runs in Rust without the GIL, so the next batch is encoded in a worker thread
    # while this one reads the texts after it and turns the ids into arrays: two batches in
    # flight at most, so memory stays bounded.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warmstart-encode")
    try:
        pending = None
        while True:
            batch = next(batches, [])
            ahead = pool.submit(encode, batch, add_special_tokens=False) if batch else None
            if pending is not None:
                ids_per_doc = [e.ids for e in pending.result()]
                lens = np.fromiter(map(len, ids_per_doc), np.int64, count=len(ids_per_doc))
                n = int(lens.sum())
                ids = np.fromiter(itertools.chain.from_iterable(ids_per_doc), np.int64, count=n)
                if n and int(ids.max()) >= vocab_size:  # would wrap around in uint16
                    raise RuntimeError(f"tokenizer produced id {int(ids.max())} >= {vocab_size}")
                writer.write(ids)
                lengths.append(lens[lens > 0])
                n_read += len(ids_per_doc)
                n_tokens += n
                bar.update(len(ids_per_doc))
                rate = n_tokens / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{n_tokens:,} tokens, {rate:,.0f} tokens/s", refresh=False)
            if ahead is None:
                break
            pending = ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        writer.close()
    if n_tokens == 0:
        shown = ", ".join(corpus.paths[:5]) + (" ..." if len(corpus.paths) > 5 else "")
        raise WarmstartError(
            f"{shown}: the corpus has no text: its {n_read} document(s) encode to no tokens "
            "with this tokenizer; check the paths, --text-field and the tokenizer"
        )
    doc_lengths = np.concatenate(lengths)
    offsets = np.zeros(len(doc_lengths) + 1, dtype=np.int64)
    np.cumsum(doc_lengths, out=offsets[1:])
    _save_npy(folder / DOCS_FILE, offsets)
    return {
        "format": FORMAT,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "n_tokens": n_tokens,
        "n_docs": len(doc_lengths),
        "n_empty_docs": n_read - len(doc_lengths),
        "shard_tokens": shard_tokens,
        "shards": writer.counts,
    }


def _valid_docs(n_docs: int, valid_fraction: float, max_valid_docs: int) -> np.ndarray:
    """Indices of the validation documents, spread evenly over the corpus."""
    if n_docs < 2 or valid_fraction <= 0 or max_valid_docs <= 0:
        return np.zeros(0, dtype=np.int64)
    n_valid = min(max(1, round(n_docs * valid_fraction)), max_valid_docs, n_docs - 1)
    j = np.arange(n_valid, dtype=np.int64)
    # The middle of each of n_valid equal stretches: distinct, since n_valid < n_docs.
    return (2 * j + 1) * n_docs // (2 * n_valid)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


def _publish(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` folder to ``final``, unless a complete one got there first."""
    try:
        os.rename(tmp, final)
        return
    except OSError:
        if not final.exists():
            raise
    # Another process built the same key meanwhile (its data are the same as ours), or a
    # broken folder from an older crash is in the way.
    try:
        load_shards(final)
    except WarmstartError:
        artifact.replace_dir(tmp, final)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# -- loading -------------------------------------------------------------------------------


def load_shards(path: str | os.PathLike[str]) -> tuple[TokenShards, TokenShards]:
    """Open a token shards folder made by :func:`build_shards`; return ``(train, valid)``.

    Checks that ``shards.json`` is complete and that every file has the size it records;
    raises :class:`~warmstart.errors.WarmstartError` naming the folder otherwise.
    """
    folder = Path(path)
    meta_path = folder / META_FILE
    if not folder.is_dir():
        raise WarmstartError(f"{folder}: no such token shards folder; check the path")
    if not meta_path.is_file():
        raise WarmstartError(
            f"{folder}: not a token shards folder (no {META_FILE}), or its build did not "
            "finish; delete it and build the shards again"
        )

    def corrupt(why: str) -> WarmstartError:
        return WarmstartError(
            f"{folder}: corrupt token shards ({why}); delete the folder and build the shards "
            "again (the next run re-tokenizes the corpus)"
        )

    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(f"unreadable {META_FILE}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise WarmstartError(
            f"{meta_path}: unsupported token shards format {found!r} (this warmstart reads "
            f"{FORMAT!r}); delete the folder and build the shards again"
        )
    try:
        dtype = np.dtype({"uint16": "<u2", "uint32": "<u4"}[meta["dtype"]])
        counts = [int(c) for c in meta["shards"]]
        n_tokens = int(meta["n_tokens"])
        n_docs = int(meta["n_docs"])
        vocab_size = int(meta["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise corrupt(f"{META_FILE} lacks or garbles {e}") from None
    if sum(counts) != n_tokens:
        raise corrupt(f"the shard counts add up to {sum(counts)}, not n_tokens {n_tokens}")
    files = [folder / SHARD_NAME.format(i) for i in range(len(counts))]
    for file, count in zip(files, counts, strict=True):
        size = file.stat().st_size if file.is_file() else None
        if size != count * dtype.itemsize:
            have = "missing" if size is None else f"{size} bytes"
            raise corrupt(f"{file.name} is {have}, expected {count * dtype.itemsize} bytes")
    try:
        offsets = np.load(folder / DOCS_FILE, mmap_mode="r")
        split = np.load(folder / SPLIT_FILE)
    except (OSError, ValueError) as e:
        raise corrupt(f"unreadable {DOCS_FILE} or {SPLIT_FILE}: {e}") from None
    if offsets.shape != (n_docs + 1,) or split.shape != (n_docs,):
        raise corrupt(f"{DOCS_FILE} or {SPLIT_FILE} does not have one entry per document")
    if (split > VALID).any():
        raise corrupt(f"{SPLIT_FILE} holds values other than {TRAIN} (train) and {VALID} (valid)")
    lengths = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != n_tokens or (lengths <= 0).any():
        raise corrupt(f"{DOCS_FILE} does not cut the {n_tokens} tokens into documents")

    store = _Store(folder, files, counts, dtype)
    starts = np.asarray(offsets[:-1])
    views = []
    for flag in (TRAIN, VALID):
        docs = np.flatnonzero(split == flag)
        views.append(
            TokenShards(
                store,
                split=_SPLIT_NAMES[flag],
                starts=starts[docs],
                lengths=lengths[docs],
                vocab_size=vocab_size,
            )
        )
    return views[0], views[1]


class _Store:
    """The shard files of one folder, read as one stream of ids; memory maps opened lazily.

    Pickling (for data loader workers) drops the maps, so a worker re-opens the files instead
    of receiving a copy of their contents.
    """

    def __init__(self, path: Path, files: list[Path], counts: list[int], dtype: np.dtype[Any]):
        self.path = path
        self.files = files
        self.dtype = dtype
        #: Stream position of each file's first id, and the total at the end.
        self.bounds = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.bounds[1:])
        self._maps: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}

    def _map(self, shard: int) -> np.ndarray:
        m = self._maps.get(shard)
        if m is None:
            m = self._maps[shard] = np.memmap(self.files[shard], dtype=self.dtype, mode="r")
        return m

    def read(self, start: int, stop: int) -> np.ndarray:
        """Ids at stream positions ``start:stop`` as a new int64 array."""
        out = np.empty(stop - start, dtype=np.int64)
        shard = int(np.searchsorted(self.bounds, start, side="right")) - 1
        pos = start
        while pos < stop:
            first, end = int(self.bounds[shard]), min(stop, int(self.bounds[shard + 1]))
            out[pos - start : end - start] = self._map(shard)[pos - first : end - first]
            pos = end
            shard += 1
        return out

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """Ids at the int64 stream ``positions`` (any shape) as a new int64 array."""
        out = np.empty(positions.shape, dtype=np.int64)
        if positions.size == 0:
            return out
        shard = np.searchsorted(self.bounds, positions, side="right") - 1
        lo, hi = int(shard.min()), int(shard.max())
        if lo == hi:  # the usual case: one file
            out[...] = self._map(lo)[positions - self.bounds[lo]]
            return out
        for s in range(lo, hi + 1):
            here = shard == s
            if here.any():
                out[here] = self._map(s)[positions[here] - self.bounds[s]]
        return out


class TokenShards:
    """One split (``"train"`` or ``"valid"``) of a tokenized corpus: its documents' ids.

    Made by :func:`build_shards` or :func:`load_shards`. ``n_docs``, ``n_tokens`` and
    ``vocab_size`` describe the split; ``path`` is the cache folder; ``doc(i)`` reads one
    document. The ids stay on disk (memory-mapped); only per-document offsets are in memory.
    """

    def __init__(
        self,
        store: _Store,
        *,
        split: str,
        starts: np.ndarray,
        lengths: np.ndarray,
        vocab_size: int,
    ) -> None:
        self._store = store
        self.path: Path = store.path
        self.split = split
        self.vocab_size = vocab_size
        self.dtype: np.dtype[Any] = store.dtype
        #: Stream offset and token count of each document of this split (int64).
        self.starts = starts
        self.lengths = lengths
        self.starts.flags.writeable = False
        self.lengths.flags.writeable = False
        self.n_docs = len(starts)
        self.n_tokens = int(lengths.sum())

    def __repr__(self) -> str:
        return (
            f"TokenShards({str(self.path)!r}, split={self.split!r}, n_docs={self.n_docs}, "
            f"n_tokens={self.n_tokens})"
        )

    def doc(self, i: int) -> np.ndarray:
        """The token ids of this split's ``i``-th document, as a new int64 array."""
        i = checked_index(i, self.n_docs, "document")
        start = int(self.starts[i])
        return self._store.read(start, start + int(self.lengths[i]))

    def read(self, start: int, stop: int) -> np.ndarray:
        """The ids at stream positions ``start:stop`` (:attr:`starts` holds such positions),
        as a new int64 array."""
        return self._store.read(start, stop)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """The ids at int64 stream ``positions`` (any shape), as a new int64 array."""
        return self._store.gather(positions)


def checked_index(i: int, n: int, what: str) -> int:
    """``i`` as an index into ``n`` items (negative ones from the end), or an IndexError
    naming ``what``."""
    i = operator.index(i)
    if not -n <= i < n:
        raise IndexError(f"{what} {i} out of range for {n}")
    return i + n if i < 0 else i
