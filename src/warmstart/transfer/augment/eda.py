"""EDA (Wei & Zou 2019): synonym replacement, random insertion, swap and deletion of words.

Synonyms are the nearest neighbours of a word in warmstart's own word vectors
(:class:`Synonyms`), so they work in whatever language and domain the vectors were trained
on, with no thesaurus.

    >>> eda = EDA(synonyms=Synonyms(KeyedVectors.load("vecs")), sr=0.1, rs=0.1)  # doctest: +SKIP
    >>> eda.augment(["the film was wonderful"], np.random.default_rng(0))       # doctest: +SKIP
    ['the movie was wonderful']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from warmstart.errors import WarmstartError
from warmstart.tokenize import Tokenizer, make_tokenizer
from warmstart.tokenize.words import join_separator, join_words, placed_words
from warmstart.transfer.augment.base import Augmenter, check_rate, n_touched
from warmstart.vectors.keyed import KeyedVectors


def _is_word(w: str) -> bool:
    """A token that has a meaning to replace: holds a letter (Han counts), not only digits."""
    return any(c.isalpha() for c in w)


def _key(w: str) -> str:
    return re.sub(r"\W", "", w.casefold())


def _variant(a: str, b: str) -> bool:
    """Same word in another case, spelling of punctuation, or with a plural ``s``."""
    ka, kb = _key(a), _key(b)
    return ka == kb or ka + "s" == kb or kb + "s" == ka or ka + "es" == kb or kb + "es" == ka


def _match_case(like: str, word: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Synonyms:
    """Synonym candidates of words: their nearest neighbours in word vectors, cached per word.

    A neighbour counts when its cosine similarity is at least ``min_similarity``, it holds a
    letter, it is not one of the ``n_stopwords`` most frequent words of the vectors, and it is
    not the word itself in another case or with a plural ``s``. A word missing from the
    vectors is looked up lowercased (its synonyms then take its capitalisation); digits,
    punctuation and the stop words get none. :meth:`lookup` answers many words with one
    batched query (:meth:`KeyedVectors.most_similar_batch`) and caches the answers.

        >>> syn = Synonyms(KeyedVectors.load("vecs"))    # doctest: +SKIP
        >>> syn("film")                                   # doctest: +SKIP
        ('movie', 'picture')
    """

    def __init__(
        self,
        vectors: KeyedVectors,
        *,
        topn: int = 10,
        min_similarity: float = 0.5,
        n_stopwords: int = 50,
        restrict_vocab: int | None = None,
    ) -> None:
        if topn < 1:
            raise WarmstartError(f"--topn {topn}: must be at least 1")
        if not -1.0 <= min_similarity <= 1.0:
            raise WarmstartError(f"--min-similarity {min_similarity}: must be in [-1, 1]")
        if n_stopwords < 0:
            raise WarmstartError(f"--n-stopwords {n_stopwords}: must not be negative")
        self.vectors = vectors
        self.topn = topn
        self.min_similarity = float(min_similarity)
        self.restrict_vocab = restrict_vocab
        self.stopwords = frozenset(vectors.words[:n_stopwords])
        self._cache: dict[str, tuple[str, ...]] = {}

    def _query(self, word: str) -> str | None:
        """The form of ``word`` to ask the vectors about, or None if it gets no synonyms."""
        if not _is_word(word):
            return None
        for form in (word, word.lower()):
            if form in self.vectors:
                return None if form in self.stopwords else form
        return word if self.vectors.has_vector(word) else None  # composed from n-grams

    def lookup(self, words: Iterable[str]) -> list[tuple[str, ...]]:
        """The synonyms of each word (possibly none), best first; new words in one batch."""
        words = list(words)
        queries = {w: q for w in set(words) - self._cache.keys() if (q := self._query(w))}
        for w in set(words) - self._cache.keys() - queries.keys():
            self._cache[w] = ()
        forms = sorted(set(queries.values()))  # sorted: the same batches whatever the order
        # Twice topn, as variants and stop words are dropped afterwards.
        found = self.vectors.most_similar_batch(
            forms, topn=2 * self.topn, restrict_vocab=self.restrict_vocab) if forms else []
        neighbours = dict(zip(forms, found, strict=True))
        for w, q in queries.items():
            kept = [n for n, s in neighbours[q] if s >= self.min_similarity and _is_word(n)
                    and n not in self.stopwords and not _variant(q, n)][: self.topn]
            self._cache[w] = tuple(kept if q == w else (_match_case(w, n) for n in kept))
        return [self._cache[w] for w in words]

    def __call__(self, word: str) -> tuple[str, ...]:
        """The synonyms of one word (cached; prefer :meth:`lookup` for many words)."""
        cached = self._cache.get(word)
        return cached if cached is not None else self.lookup([word])[0]


# --------------------------------------------------------------------------- EDA operations


def synonym_replacement(
    words: Sequence[str], rate: float, rng: np.random.Generator, synonyms: Synonyms
) -> list[str]:
    """Replace ``n_touched(len, rate)`` words that have synonyms by a random synonym each."""
    out = list(words)
    n = n_touched(len(words), rate)
    candidates = [i for i, w in enumerate(words) if synonyms(w)] if n else []
    for i in rng.permutation(candidates)[:n].tolist() if candidates else []:
        options = synonyms(words[i])
        out[i] = options[int(rng.integers(len(options)))]
    return out


def random_insertion(
    words: Sequence[str], rate: float, rng: np.random.Generator, synonyms: Synonyms
) -> list[str]:
    """Insert ``n_touched(len, rate)`` times a synonym of a random word at a random place.

    The words whose synonyms are inserted are drawn from the original words (which have
    synonyms); a text where no word has any is returned unchanged.
    """
    out = list(words)
    n = n_touched(len(words), rate)
    candidates = [w for w in words if synonyms(w)] if n else []
    for _ in range(n if candidates else 0):
        options = synonyms(candidates[int(rng.integers(len(candidates)))])
        out.insert(int(rng.integers(len(out) + 1)), options[int(rng.integers(len(options)))])
    return out


def random_swap(words: Sequence[str], rate: float, rng: np.random.Generator) -> list[str]:
    """Swap two distinct random positions, ``n_touched(len, rate)`` times."""
    out = list(words)
    for _ in range(n_touched(len(words), rate) if len(words) > 1 else 0):
        i, j = rng.choice(len(out), size=2, replace=False).tolist()
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: Sequence[str], rate: float, rng: np.random.Generator) -> list[str]:
    """Delete ``n_touched(len, rate)`` random words, never all of them.

    EDA deletes each word with probability ``rate``; a fixed count, as the other operations
    use, makes the rate mean the same thing in all four and never leaves a text unchanged.
    """
    n = min(n_touched(len(words), rate), len(words) - 1)
    if n <= 0:
        return list(words)
    keep = np.sort(rng.choice(len(words), size=len(words) - n, replace=False))
    return [words[i] for i in keep.tolist()]


class EDA(Augmenter):
    """Easy Data Augmentation (Wei & Zou 2019) with synonyms from word vectors.

    Each copy of a text comes from one of the operations whose rate is above 0, drawn at
    random (EDA makes an equal share of its copies with each): synonym replacement (``sr``),
    random insertion (``ri``), random swap (``rs``), random deletion (``rd``). A rate is the
    share of the words touched (EDA's alpha), at least one. Texts are split by the word
    tokenizer ``tokenizer`` (a name for :func:`~warmstart.tokenize.make_tokenizer`, e.g.
    ``"jieba"`` for Chinese, or a tokenizer) and joined back as ``join`` says (:data:`~warmstart.tokenize.words.JOINS`;
    by default words that stay neighbours keep their spacing, and Chinese gets no spaces).
    A text the operation leaves as it was is returned exactly as given.

    ``synonyms`` (a :class:`Synonyms`, or word vectors to make one with its defaults) is needed
    when ``sr`` or ``ri`` is above 0.
    """

    def __init__(
        self,
        *,
        synonyms: Synonyms | KeyedVectors | None = None,
        sr: float = 0.1,
        ri: float = 0.1,
        rs: float = 0.1,
        rd: float = 0.1,
        tokenizer: str | Tokenizer = "words",
        join: str = "auto",
    ) -> None:
        self.rates = {name: check_rate(name, v) for name, v in
                      (("sr", sr), ("ri", ri), ("rs", rs), ("rd", rd))}
        if isinstance(synonyms, KeyedVectors):
            synonyms = Synonyms(synonyms)
        if synonyms is None and (sr > 0 or ri > 0):
            raise WarmstartError(
                f"--sr {sr} and --ri {ri} need synonyms: give word vectors (--vectors), "
                "or set --sr 0 --ri 0")
        self.synonyms = synonyms
        self.tokenizer = make_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        join_separator(join)
        self.join = join
        ops: dict[str, Callable[[Sequence[str], float, np.random.Generator], list[str]]] = {
            "sr": lambda w, r, g: synonym_replacement(w, r, g, self._synonyms),
            "ri": lambda w, r, g: random_insertion(w, r, g, self._synonyms),
            "rs": random_swap,
            "rd": random_deletion,
        }
        self._ops = [(ops[name], rate) for name, rate in self.rates.items() if rate > 0]

    @property
    def _synonyms(self) -> Synonyms:
        assert self.synonyms is not None
        return self.synonyms

    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        if not self._ops:
            return list(texts)
        tokenized = [placed_words(t, self.tokenizer.tokenize(t)) for t in texts]
        if self.synonyms is not None and (self.rates["sr"] > 0 or self.rates["ri"] > 0):
            self.synonyms.lookup({w for words in tokenized for w in words})
        out = []
        for text, words in zip(texts, tokenized, strict=True):
            op, rate = self._ops[int(rng.integers(len(self._ops)))]
            new = op(words, rate, rng)
            out.append(text if new == words else join_words(new, self.join))
        return out
