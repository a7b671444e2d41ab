"""Seeds derived from a seed: one mixer for every stream of random numbers a run needs.

A run draws its batches, masks, dropout and word-vector chunks from generators seeded by
(seed, what, where), so that any step can be recomputed alone: a resumed run repeats exactly
what an uninterrupted one does, whatever the order or the number of workers.
"""

from __future__ import annotations

import hashlib


def mix_seed(*parts: int | str) -> int:
    """A seed in ``[0, 2**63)`` from integers and names, stable across runs, processes and
    platforms (unlike ``hash()``): the first 8 bytes of the sha256 of the parts.

        >>> mix_seed(0, "train", 3) == mix_seed(0, "train", 3) != mix_seed(0, "valid", 3)
        True
    """
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1
