"""fastText-style character n-grams, hashed into a fixed number of buckets.

A word is wrapped as ``<word>``; every character n-gram of length ``min_n..max_n`` is hashed
with fastText's FNV-1a variant (bytes sign-extended, as fastText and gensim do) into
``bucket`` rows of a shared n-gram matrix. A word's vector is the mean of its own row and its
n-gram rows; an unseen word still has n-grams, hence a vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from warmstart.vectors.kernels import fnv1a_many


def char_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """The character n-grams of ``<word>``, as fastText makes them.

    >>> char_ngrams("where", 3, 3)
    ['<wh', 'whe', 'her', 'ere', 're>']
    """
    w = f"<{word}>"
    out = []
    for i in range(len(w)):
        for n in range(min_n, max_n + 1):
            if i + n > len(w):
                break
            if n == 1 and (i == 0 or i + n == len(w)):
                continue
            out.append(w[i : i + n])
    return out


def fasttext_hash(texts: Sequence[str]) -> np.ndarray:
    """fastText's 32-bit hash of each string (over its UTF-8 bytes)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return fnv1a_many(data, offsets)


def ngram_buckets(words: Sequence[str], min_n: int, max_n: int, bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket ids of every word's n-grams, as CSR arrays ``(offsets, ids)``.

    ``ids[offsets[i]:offsets[i+1]]`` are the rows of the n-gram matrix that word ``i`` uses.
    """
    grams: list[str] = []
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    if max_n >= min_n > 0:
        for i, w in enumerate(words):
            grams.extend(char_ngrams(w, min_n, max_n))
            offsets[i + 1] = len(grams)
    ids = (fasttext_hash(grams).astype(np.int64) % bucket).astype(np.int32) if grams else np.zeros(0, np.int32)
    return offsets, ids
