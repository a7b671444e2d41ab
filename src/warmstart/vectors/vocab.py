"""One pass over a corpus: count words and encode it as a token-id stream on disk.

The pass assigns every new word a provisional id in order of first appearance and appends the
ids of each document to a temporary int32 file (``-1`` ends a document). Once the counts are
known, :func:`build_vocab` keeps the frequent words and :func:`remap_stream` rewrites the stream
with final ids, dropping rare words. Training epochs then read that file in chunks: no Python
work per token after the first pass, and memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from warmstart import corpus
from warmstart.errors import WarmstartError

DOC_END = -1
_FLUSH_TOKENS = 1 << 16  # ids held as Python ints before a flush: keep it small


@dataclass
class ScannedCorpus:
    """What one pass over the corpus found: words in first-seen order and their counts."""

    words: list[str]
    counts: np.ndarray  # (n_words,) int64, indexed by provisional id
    stream_path: Path  # int32 provisional ids, DOC_END between documents
    n_docs: int
    n_tokens: int


@dataclass
class Vocab:
    """The kept words, most frequent first, and their counts."""

    words: list[str]
    counts: np.ndarray  # (V,) int64
    remap: np.ndarray  # provisional id -> final id, or -2 for dropped words

    def __len__(self) -> int:
        return len(self.words)


def scan_corpus(
    docs: Iterable[str],
    tokenize: Callable[[str], list[str]],
    workdir: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> ScannedCorpus:
    """Tokenize every document once, count words and write the provisional id stream.

    A document longer than :data:`~warmstart.corpus.MAX_DOC_CHARS` is tokenized in pieces
    (:func:`~warmstart.corpus.split_long`; a :class:`~warmstart.corpus.Corpus` yields them cut
    already), so a huge string in a list of texts never becomes one huge list of tokens.
    """
    ids: defaultdict[str, int] = defaultdict()
    ids.default_factory = ids.__len__  # a new word gets the next id; map() then runs in C
    lookup = ids.__getitem__
    stream_path = Path(workdir) / "tokens.provisional.i32"
    counts = np.zeros(0, dtype=np.int64)
    buf: list[int] = []
    n_docs = n_tokens = 0
    bar = tqdm(desc="scan", unit=" docs", disable=not progress, mininterval=0.5, smoothing=0.1)
    with open(stream_path, "wb") as out:

        def flush() -> None:
            nonlocal counts, n_tokens
            arr = np.array(buf, dtype=np.int32)
            out.write(arr.tobytes())
            tok = arr[arr >= 0]
            n_tokens += len(tok)
            if len(ids) > len(counts):
                counts = np.concatenate([counts, np.zeros(len(ids) - len(counts), np.int64)])
            counts += np.bincount(tok, minlength=len(counts))
            buf.clear()

        for text in docs:
            pieces = (text,) if len(text) <= corpus.MAX_DOC_CHARS else corpus.split_long(text)
            for doc in pieces:
                tokens = tokenize(doc)
                if not tokens:
                    continue
                buf.extend(map(lookup, tokens))
                buf.append(DOC_END)
                n_docs += 1
                if len(buf) >= _FLUSH_TOKENS:
                    flush()
                    bar.update(n_docs - bar.n)
                    bar.set_postfix(words=f"{n_tokens:,}", refresh=False)
        flush()
    bar.update(n_docs - bar.n)
    bar.close()
    words = list(ids)
    return ScannedCorpus(words, counts, stream_path, n_docs, n_tokens)


def build_vocab(scan: ScannedCorpus, *, min_count: int = 5, max_vocab: int | None = None) -> Vocab:
    """Keep words seen at least ``min_count`` times (at most ``max_vocab`` of them), most frequent first."""
    if min_count < 1:
        raise WarmstartError(f"--min-count must be at least 1, got {min_count}")
    # Most frequent first; ties keep first-seen order so the vocabulary is deterministic.
    order = np.argsort(-scan.counts, kind="stable")
    keep = order[scan.counts[order] >= min_count]
    if max_vocab is not None:
        keep = keep[:max_vocab]
    if len(keep) == 0:
        raise WarmstartError(
            f"no word occurs at least --min-count {min_count} times in {scan.n_tokens:,} tokens; "
            "lower --min-count or give more text"
        )
    remap = np.full(len(scan.counts), -2, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    words = [scan.words[i] for i in keep]
    return Vocab(words, scan.counts[keep].copy(), remap)


def remap_stream(scan: ScannedCorpus, vocab: Vocab, out_path: str | os.PathLike[str]) -> int:
    """Rewrite the stream with final ids, dropping out-of-vocabulary words; return its length."""
    remap = np.append(vocab.remap, np.int32(DOC_END))  # index -1 maps DOC_END to itself
    n = 0
    with open(out_path, "wb") as out:
        for chunk in read_chunks(scan.stream_path, 1 << 20):
            mapped = remap[chunk]
            mapped = mapped[mapped != -2]
            out.write(mapped.tobytes())
            n += len(mapped)
    return n


def read_chunks(path: str | os.PathLike[str], size: int) -> Iterator[np.ndarray]:
    """Yield consecutive int32 chunks of a stream file, holding one chunk in memory at a time."""
    with open(path, "rb") as f:
        while True:
            chunk = np.fromfile(f, dtype=np.int32, count=size)
            if len(chunk) == 0:
                return
            yield chunk
