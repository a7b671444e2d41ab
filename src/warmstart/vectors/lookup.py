"""``warmstart vectors neighbors``: the nearest words of words, in vectors given loaded or by path."""

from __future__ import annotations

import os
from collections.abc import Sequence

from warmstart.errors import WarmstartError
from warmstart.vectors.formats import load_vectors
from warmstart.vectors.keyed import KeyedVectors


def neighbors(
    model: KeyedVectors | str | os.PathLike[str], words: Sequence[str], *, topn: int = 10
) -> dict[str, list[tuple[str, float]]]:
    """The ``topn`` nearest neighbours (cosine) of each of ``words`` in ``model`` (vectors, an
    artifact folder or a word2vec file), as ``warmstart vectors neighbors`` lists them.

    A word without a vector is an error that names every such word.

        >>> neighbors("vecs", ["good"], topn=2)            # doctest: +SKIP
        {'good': [('great', 0.81), ('decent', 0.77)]}
    """
    kv = load_vectors(model)
    missing = [w for w in words if not kv.has_vector(w)]
    if missing:
        raise WarmstartError(f"not in the vocabulary of {model}: {', '.join(missing)}")
    return dict(zip(words, kv.most_similar_batch(list(words), topn=topn), strict=True))
