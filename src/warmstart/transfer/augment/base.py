"""The augmenter interface: what every augmenter offers, and what is built on it alone.

Every augmenter has one method, ``augment(texts, rng) -> list[str]``: one augmented copy of
each text of a batch, its randomness drawn from a NumPy ``Generator`` (same seed, same copies).
Augmenters hold no files and batch their expensive work (neighbour queries, forward passes), so
training code can call them on every batch. The members: :class:`~warmstart.transfer.augment.eda.EDA`
(word operations), :class:`~warmstart.transfer.augment.mlm.ContextualMLM` (MLM refilling) and
:class:`OneOf` (one of several, drawn per text); :func:`augment_copies` makes ``n`` copies per text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from warmstart.config import option_name
from warmstart.errors import WarmstartError


def check_rate(name: str, value: float) -> float:
    """``value`` as a float if it is a share between 0 and 1, else an error naming ``--name``."""
    if not 0.0 <= value <= 1.0:
        raise WarmstartError(f"{option_name(name)} {value}: must be between 0 and 1")
    return float(value)


def n_touched(n_words: int, rate: float) -> int:
    """Words an operation touches, as EDA counts them: ``int(rate * n)``, at least 1 if rate > 0."""
    if rate <= 0 or n_words == 0:
        return 0
    return max(1, int(rate * n_words))


class Augmenter(ABC):
    """Makes one augmented copy of each text of a batch; the base of every augmenter."""

    @abstractmethod
    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        """One augmented copy of each of ``texts``, in order, drawn with ``rng``."""


class OneOf(Augmenter):
    """Each text's copy comes from one of ``augmenters``, drawn at random for each text.

    The texts given to each augmenter are passed to it as one batch.
    """

    def __init__(self, augmenters: Sequence[Augmenter]) -> None:
        if not augmenters:
            raise ValueError("OneOf needs at least one augmenter")
        self.augmenters = list(augmenters)

    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        which = rng.integers(len(self.augmenters), size=len(texts))
        out = list(texts)
        for k, aug in enumerate(self.augmenters):
            rows = np.flatnonzero(which == k).tolist()
            if rows:
                for i, new in zip(rows, aug.augment([texts[i] for i in rows], rng), strict=True):
                    out[i] = new
        return out


def augment_copies(
    augmenter: Augmenter, texts: Sequence[str], n: int, rng: np.random.Generator
) -> list[list[str]]:
    """``n`` augmented copies of each text: ``out[i]`` holds the copies of ``texts[i]``.

    Each copy is one ``augment`` call over the whole batch.
    """
    if n < 0:
        raise WarmstartError(f"--copies {n}: must not be negative")
    rounds = [augmenter.augment(texts, rng) for _ in range(n)]
    return [[r[i] for r in rounds] for i in range(len(texts))]
