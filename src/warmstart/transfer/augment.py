"""Data augmentation for text classification: EDA's word operations and MLM refilling.

Every augmenter has one method, ``augment(texts, rng) -> list[str]``: one augmented copy of
each text of a batch, its randomness drawn from a NumPy ``Generator`` (same seed, same copies).
Augmenters hold no files and batch their expensive work (neighbour queries, forward passes), so
training code can call them on every batch.

* :class:`EDA` (Wei & Zou 2019): synonym replacement, random insertion, random swap and
  random deletion of words. Synonyms are the nearest neighbours of a word in warmstart's own
  word vectors (:class:`Synonyms`), so they work in whatever language and domain the vectors
  were trained on, with no thesaurus.
* :class:`ContextualMLM`: masks a share of the subword tokens and refills each by sampling
  from the MLM head of an encoder pretrained with ``warmstart pretrain --objective mlm``.
* :class:`OneOf`: each text gets its copy from one augmenter drawn at random.

:func:`augment_copies` makes ``n`` copies per text; :func:`augment_dataset` writes a labeled
dataset with its copies as JSONL (the ``warmstart augment`` command).

    >>> eda = EDA(synonyms=Synonyms(KeyedVectors.load("vecs")), sr=0.1, rs=0.1)  # doctest: +SKIP
    >>> eda.augment(["the film was wonderful"], np.random.default_rng(0))       # doctest: +SKIP
    ['the movie was wonderful']
"""

from __future__ import annotations

import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.artifact import TOKENIZER_FILE, atomic_file
from warmstart.config import check_settings, opt
from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset, ReadConfig
from warmstart.tokenize import Tokenizer, make_tokenizer
from warmstart.tokenize.words import _HAN
from warmstart.vectors.formats import load_vectors, vectors_tokenizer
from warmstart.vectors.keyed import KeyedVectors

#: How words are joined back into text (``join=``). ``auto``: words that were neighbours in
#: the text keep what stood between them; other pairs get a space, except next to a CJK
#: character (Chinese and Japanese are written without spaces), before closing punctuation and
#: after opening brackets. ``space``: one space between all words. ``none``: no spaces.
JOINS = {"auto": None, "space": " ", "none": ""}
# Han, CJK punctuation, kana, full-width forms: no space on either side of these.
_CJK = re.compile(f"[{_HAN}\u3000-\u303f\u3040-\u30ff\uff00-\uffef]")
_CLOSING, _OPENING = ",.!?;:%)]}", "([{"
_CHUNK = 1000  # texts per augment() call when writing a dataset


class _Placed(str):
    """A word that remembers its place in the text it came from and what stood before it."""

    place: int
    before: str


def placed_words(text: str, words: Sequence[str]) -> list[str]:
    """``words`` (a tokenizer's split of ``text``) marked with their places in it.

    :func:`join_words` uses the marks to give words that stay neighbours their own spacing.
    When a word is not found in order in ``text`` (a lowercasing tokenizer), the words are
    returned as they are and joining falls back to the rules of ``auto``.
    """
    out: list[str] = []
    pos = 0
    for i, w in enumerate(words):
        at = text.find(w, pos)
        if at < 0:
            return list(words)
        p = _Placed(w)
        p.place, p.before = i, text[pos:at]
        out.append(p)
        pos = at + len(w)
    return out


def join_words(words: Sequence[str], join: str = "auto") -> str:
    """Words back into one text, as ``join`` says (see :data:`JOINS`).

    >>> join_words(["我", "用", "Python", "3", "写", "代码", "。"])
    '我用Python 3写代码。'
    >>> join_words(["a", "fine", "(", "French", ")", "film", "!"])
    'a fine (French) film!'
    >>> join_words(placed_words("At 4:00pm, rain.", ["At", "4", ":", "00pm", ",", "rain", "."]))
    'At 4:00pm, rain.'
    """
    sep = _join_sep(join)
    if sep is not None:
        return sep.join(words)
    out: list[str] = []
    prev: str | None = None
    for w in (w for w in words if w):
        if isinstance(w, _Placed) and (
            w.place == 0 if prev is None else isinstance(prev, _Placed) and prev.place == w.place - 1
        ):
            out.append(w.before)
        elif prev is not None and not (
            _CJK.match(prev[-1]) or _CJK.match(w[0])
            or not w.strip(_CLOSING) or not prev.strip(_OPENING)
        ):
            out.append(" ")
        out.append(w)
        prev = w
    return "".join(out)


def _join_sep(join: str) -> str | None:
    if join not in JOINS:
        raise WarmstartError(f"--join {join!r}: use one of {', '.join(JOINS)}")
    return JOINS[join]


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise WarmstartError(f"--{name.replace('_', '-')} {value}: must be between 0 and 1")
    return float(value)


def n_touched(n_words: int, rate: float) -> int:
    """Words an operation touches, as EDA counts them: ``int(rate * n)``, at least 1 if rate > 0."""
    if rate <= 0 or n_words == 0:
        return 0
    return max(1, int(rate * n_words))


# ------------------------------------------------------------------------------- synonyms


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


# ----------------------------------------------------------------------------- augmenters


class Augmenter(ABC):
    """Makes one augmented copy of each text of a batch; the base of every augmenter."""

    @abstractmethod
    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        """One augmented copy of each of ``texts``, in order, drawn with ``rng``."""


class EDA(Augmenter):
    """Easy Data Augmentation (Wei & Zou 2019) with synonyms from word vectors.

    Each copy of a text comes from one of the operations whose rate is above 0, drawn at
    random (EDA makes an equal share of its copies with each): synonym replacement (``sr``),
    random insertion (``ri``), random swap (``rs``), random deletion (``rd``). A rate is the
    share of the words touched (EDA's alpha), at least one. Texts are split by the word
    tokenizer ``tokenizer`` (a name for :func:`~warmstart.tokenize.make_tokenizer`, e.g.
    ``"jieba"`` for Chinese, or a tokenizer) and joined back as ``join`` says (:data:`JOINS`;
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
        self.rates = {name: _check_rate(name, v) for name, v in
                      (("sr", sr), ("ri", ri), ("rs", rs), ("rd", rd))}
        if isinstance(synonyms, KeyedVectors):
            synonyms = Synonyms(synonyms)
        if synonyms is None and (sr > 0 or ri > 0):
            raise WarmstartError(
                f"--sr {sr} and --ri {ri} need synonyms: give word vectors (--vectors), "
                "or set --sr 0 --ri 0")
        self.synonyms = synonyms
        self.tokenizer = make_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        _join_sep(join)
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


# ------------------------------------------------------------------------- contextual (MLM)


def load_mlm(path: str | os.PathLike[str]) -> tuple[Any, Any, Any]:
    """The encoder, its MLM head and its tokenizer, from a ``--objective mlm`` artifact.

    Refuses, naming the folder and what to use instead, a model without an MLM head: one
    imported from Hugging Face, or pretrained with another objective.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    from warmstart.models.io import HEADS_FILE, load_pretrained
    from warmstart.models.transformer import MaskedLMHead

    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"--mlm {folder}: no such model folder")
    heads = folder / HEADS_FILE
    made_by = None
    if heads.is_file():
        with safe_open(str(heads), "pt") as f:
            made_by = (f.metadata() or {}).get("objective")
    if made_by != "mlm":
        raise WarmstartError(
            f"--mlm {folder}: has no MLM head ({HEADS_FILE} written by `warmstart pretrain "
            f"--objective mlm`), so it cannot fill in masked words; continue its pretraining "
            f"with `warmstart pretrain CORPUS --init {folder} --objective mlm --out DIR` and "
            "give DIR, or augment with word vectors instead (EDA: --vectors)")
    loaded = load_pretrained(folder, kind="encoder")
    if loaded.tokenizer is None:
        raise WarmstartError(f"--mlm {folder}: the encoder has no {TOKENIZER_FILE}")
    encoder = loaded.model
    head = MaskedLMHead(encoder.config, encoder.tok_emb)
    state = {k.removeprefix("head."): v for k, v in load_file(str(heads)).items()}
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WarmstartError(f"{heads}: does not fit the encoder beside it ({e})") from None
    return encoder.eval(), head.eval(), loaded.tokenizer


class ContextualMLM(Augmenter):
    """Contextual replacement: refill a share of the tokens with an MLM's guesses.

    In each text ``n_touched(tokens, rate)`` subword tokens (special tokens aside) are
    masked, and each is replaced by a token sampled from the MLM head's ``top_k`` likeliest,
    never a special token nor the original, and a word start for a word start, a continuation
    for a continuation. The rest of the text is kept character for character (replacements
    are placed by the tokenizer's offsets), so spacing and script are preserved. One forward
    pass per ``batch_size`` texts; tokens past ``max_len`` are left alone.

    ``model`` is an encoder artifact from ``warmstart pretrain --objective mlm``
    (see :func:`load_mlm`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        rate: float = 0.15,
        top_k: int = 10,
        batch_size: int = 32,
        max_len: int = 512,
        device: str = "cpu",
    ) -> None:
        from warmstart.objectives.base import SpecialTokens, word_starts

        self.rate = _check_rate("mlm_rate", rate)
        if top_k < 1:
            raise WarmstartError(f"--top-k {top_k}: must be at least 1")
        self.top_k, self.batch_size, self.device = top_k, batch_size, torch.device(device)
        encoder, head, tok = load_mlm(model)
        self.encoder, self.head = encoder.to(self.device), head.to(self.device)
        tok.no_padding()
        tok.no_truncation()
        self.tokenizer = tok
        self.special = SpecialTokens.of(tok)
        if self.special.mask is None:
            raise WarmstartError(f"--mlm {model}: the tokenizer has no [MASK] token")
        self.mask_id: int = self.special.mask
        self.max_len = min(max_len, encoder.config.max_positions) - 2
        vocab = encoder.config.vocab_size
        # What each token reads as in text: its piece without ## (WordPiece) or ▁/Ġ marks.
        decode = tok.decoder.decode if tok.decoder is not None else "".join
        pieces = [tok.id_to_token(i) or "" for i in range(vocab)]
        self.surface = [decode([p.removeprefix("##")]).strip() for p in pieces]
        allowed = np.array([bool(s) for s in self.surface])
        allowed[self.special.ids()] = False
        self._allowed = torch.from_numpy(allowed).to(self.device)  # (V,)
        starts = np.ones(vocab, dtype=bool)  # the tokenizer may know fewer tokens than the model
        known = word_starts(tok)[:vocab]
        starts[: len(known)] = known
        self._starts = torch.from_numpy(starts).to(self.device)  # (V,)

    def replacements(
        self, texts: Sequence[str], rng: np.random.Generator
    ) -> list[list[tuple[int, int, str]]]:
        """For each text, the (start, end, new text) of each replaced token, in order."""
        enc = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        specials = set(self.special.ids())
        out: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        picked: list[tuple[int, list[int]]] = []  # (text, token positions) with something to do
        for t, e in enumerate(enc):
            ids, offsets = e.ids[: self.max_len], e.offsets[: self.max_len]
            eligible = [j for j, (i, (a, b)) in enumerate(zip(ids, offsets, strict=True))
                        if i not in specials and b > a]
            n = n_touched(len(eligible), self.rate)
            if n:
                picked.append((t, sorted(rng.choice(eligible, size=n, replace=False).tolist())))
        for start in range(0, len(picked), self.batch_size):
            batch = picked[start : start + self.batch_size]
            rows = [[self.special.cls, *enc[t].ids[: self.max_len], self.special.sep]
                    for t, _ in batch]
            x = torch.full((len(rows), max(map(len, rows))), self.special.pad)  # (B, T)
            for r, row in enumerate(rows):
                x[r, : len(row)] = torch.tensor(row)
            chosen = torch.zeros_like(x, dtype=torch.bool)
            for r, (_, positions) in enumerate(batch):
                chosen[r, [p + 1 for p in positions]] = True  # +1: after [CLS]
            original = x[chosen]  # (N,) in row-major order, as the positions are listed
            x[chosen] = self.mask_id
            new = self._sample(x.to(self.device), chosen.to(self.device),
                               original.to(self.device), rng)
            k = 0
            for t, positions in batch:
                offsets = enc[t].offsets
                for p in positions:
                    out[t].append((*offsets[p], self.surface[new[k]]))
                    k += 1
        return out

    @torch.inference_mode()
    def _sample(self, x: torch.Tensor, chosen: torch.Tensor, original: torch.Tensor,
                rng: np.random.Generator) -> list[int]:
        """One forward pass; a token id drawn from the top-k of each masked position."""
        hidden = self.encoder(x, attention_mask=x != self.special.pad)  # (B, T, C)
        logits = self.head(hidden[chosen]).float()  # (N, V)
        ok = self._allowed[None, :] & (self._starts[None, :] == self._starts[original][:, None])
        ok[torch.arange(len(original)), original] = False
        logits = logits.masked_fill(~ok, float("-inf"))
        top, ids = logits.topk(min(self.top_k, logits.shape[1]), dim=1)  # (N, k)
        probs = torch.softmax(top, dim=1).nan_to_num(0.0).cpu().numpy().astype(np.float64)
        cum = probs.cumsum(axis=1)
        u = rng.random(len(cum)) * cum[:, -1]
        pick = np.minimum((cum < u[:, None]).sum(axis=1), cum.shape[1] - 1)
        return ids.cpu().numpy()[np.arange(len(pick)), pick].tolist()

    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        if self.rate == 0:
            return list(texts)
        out = []
        for text, spans in zip(texts, self.replacements(texts, rng), strict=True):
            parts, last = [], 0
            for a, b, new in spans:
                parts += [text[last:a], new]
                last = b
            out.append("".join([*parts, text[last:]]))
        return out


# ------------------------------------------------------------------------ labeled datasets


@dataclass
class AugmentConfig(ReadConfig):
    """How to augment a labeled dataset: the augmenters, their rates, how to read the data."""

    vectors: str = opt("", "word vectors whose neighbours are EDA's synonyms (needed by --sr, --ri)")
    mlm: str = opt("", "encoder with an MLM head (warmstart pretrain --objective mlm): "
                       "contextual replacement, mixed with EDA's copies")
    copies: int = opt(4, "augmented copies per example", at_least=1)
    seed: int = opt(0, "random seed: the same seed writes the same file", at_least=0)
    sr: float = opt(0.1, "EDA synonym replacement: share of words replaced", at_least=0, at_most=1)
    ri: float = opt(0.1, "EDA random insertion: synonyms inserted, as a share of the words", at_least=0, at_most=1)
    rs: float = opt(0.1, "EDA random swap: swaps, as a share of the words", at_least=0, at_most=1)
    rd: float = opt(0.1, "EDA random deletion: share of words deleted", at_least=0, at_most=1)
    mlm_rate: float = opt(0.15, "contextual: share of tokens masked and refilled", above=0, at_most=1)
    top_k: int = opt(10, "contextual: sample a refill among the k likeliest tokens", at_least=1)
    tokenizer: str = opt("", "EDA's word tokenizer (default: the one the vectors were trained "
                             "with, jieba for tagged text; words without --vectors)")
    join: str = opt("auto", "how words are joined: auto (no spaces around Chinese or Japanese), "
                            "space or none")
    topn: int = opt(10, "synonyms: nearest neighbours considered per word", at_least=1)
    min_similarity: float = opt(0.5, "synonyms: lowest cosine similarity of a synonym", at_least=-1, at_most=1)
    n_stopwords: int = opt(50, "synonyms: the vectors' most frequent words, never replaced", at_least=0)

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise WarmstartError(f"--copies {self.copies}: must not be negative")
        for name in ("sr", "ri", "rs", "rd", "mlm_rate"):
            _check_rate(name, getattr(self, name))
        _join_sep(self.join)


def make_augmenter(cfg: AugmentConfig) -> Augmenter:
    """The augmenter ``cfg`` describes: EDA, contextual MLM, or one of them per copy."""
    augmenters: list[Augmenter] = []
    if cfg.vectors or any(getattr(cfg, r) > 0 for r in ("sr", "ri", "rs", "rd")):
        synonyms, tokenizer = None, cfg.tokenizer or "words"
        if cfg.vectors:
            kv = load_vectors(cfg.vectors, option="--vectors")
            tokenizer = cfg.tokenizer or vectors_tokenizer(cfg.vectors)[0]
            synonyms = Synonyms(kv, topn=cfg.topn, min_similarity=cfg.min_similarity,
                                n_stopwords=cfg.n_stopwords)
        augmenters.append(EDA(synonyms=synonyms, sr=cfg.sr, ri=cfg.ri, rs=cfg.rs, rd=cfg.rd,
                              tokenizer=tokenizer, join=cfg.join))
    if cfg.mlm:
        augmenters.append(ContextualMLM(cfg.mlm, rate=cfg.mlm_rate, top_k=cfg.top_k))
    if not augmenters:
        raise WarmstartError("nothing to augment with: every EDA rate is 0 and there is no --mlm")
    return augmenters[0] if len(augmenters) == 1 else OneOf(augmenters)


def augment_dataset(
    data: str | os.PathLike[str] | LabeledDataset,
    *,
    out: str | os.PathLike[str],
    augmenter: Augmenter | None = None,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Write ``data`` with ``copies`` augmented copies of each example to the JSONL file ``out``.

    Each example is written as ``{"text": ..., "label": ...}`` (a list of labels when the data
    is multi-label), followed by its copies with the same label. ``options`` are the fields of
    :class:`AugmentConfig` (the CLI's option names); ``augmenter`` replaces the one they
    describe. The file is written under a temporary name and renamed into place. Returns a
    summary: examples in and out, copies identical to their original, seconds.
    """
    from tqdm.auto import tqdm

    check_settings(AugmentConfig, options, where="options")
    cfg = AugmentConfig(**options)
    out_path = Path(out)
    if out_path.is_dir():
        raise WarmstartError(f"--out {out_path}: is a folder; give a .jsonl file to write")
    ds = data if isinstance(data, LabeledDataset) else cfg.read(data)
    aug = augmenter or make_augmenter(cfg)
    started, rng = time.perf_counter(), np.random.default_rng(cfg.seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    unchanged = 0
    with atomic_file(out_path) as f, tqdm(total=len(ds), unit=" texts", desc="augment",
                                          disable=not progress) as bar:
        for start in range(0, len(ds), _CHUNK):
            texts = ds.texts[start : start + _CHUNK]
            for i, (text, copies) in enumerate(
                zip(texts, augment_copies(aug, texts, cfg.copies, rng), strict=True)
            ):
                label = _label(ds, start + i)
                unchanged += sum(c == text for c in copies)
                f.write("".join(json.dumps({"text": t, "label": label}, ensure_ascii=False)
                                + "\n" for t in [text, *copies]).encode("utf-8"))
            bar.update(len(texts))
    return {"out": str(out_path), "examples_in": len(ds),
            "examples_out": len(ds) * (1 + cfg.copies), "copies_unchanged": unchanged,
            "seconds": round(time.perf_counter() - started, 1)}


def _label(ds: LabeledDataset, i: int) -> str | list[str]:
    if ds.multi_label:
        return [ds.labels[k] for k in np.flatnonzero(ds.y[i]).tolist()]
    return ds.labels[int(ds.y[i])]
