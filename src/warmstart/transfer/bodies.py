"""What a classifier reads texts with: a pretrained encoder, (pretrained) word vectors, or TF-IDF.

A body turns a batch of token ids into one vector per text, ``(B, T) -> (B, C)``, and knows
how to turn raw texts into those ids (``encode``). Every body takes padded id tensors, so the
training loop can slice any batch into micro-batches. Each is a :class:`Body`: it describes
itself (``describe()``, saved in a classifier's ``warmstart.json``) and writes what it reads
texts with (``save_vocabulary``), and :meth:`Body.from_spec` makes it again from both.

* :class:`EncoderBody`: a BERT-family encoder (ours, or imported from Hugging Face) with its
  subword tokenizer; pooling by mean of the tokens, the [CLS] state, or BERT's pooler, then
  optionally scaled to length 1 (as sentence-transformers models that end in ``Normalize``).
* :class:`WordVectorBody`: fastText's supervised model: the mean of word embeddings and of
  hashed word-n-gram embeddings, optionally followed by a small MLP. Its word embeddings can
  start from warmstart's vectors (frozen or trained).
* :class:`TfidfBody`: TF-IDF of words and word n-grams, fitted on the texts, nothing trained:
  with a logistic regression on top, the classic baseline, and a student that reads texts
  differently from a pretrained teacher (self-training with ``--teacher``).
"""

from __future__ import annotations

import copy
import json
import math
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tokenizers
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.artifact import TOKENIZER_FILE, VOCAB_FILE
from warmstart.errors import WarmstartError
from warmstart.models.transformer import Encoder, TransformerConfig
from warmstart.tokenize import Tokenizer, make_tokenizer
from warmstart.tokenize.remembered import tokens_of
from warmstart.tokenize.subword import load_tokenizer
from warmstart.train.precision import uses_bf16
from warmstart.transfer.trained_rows import seen_ids, train_seen_rows

POOLINGS = ("mean", "cls", "pooler")
VECTOR_POOLINGS = ("mean", "mean+max")
TRUNCATIONS = ("head", "tail", "head+tail")


def truncate(ids: Sequence[int], keep: int, how: str = "head") -> list[int]:
    """At most ``keep`` of ``ids``: the start, the end, or a quarter from the start and the
    rest from the end ("head+tail", the best cut for long reviews in Sun et al. 2019)."""
    if len(ids) <= keep:
        return list(ids)
    if how == "head":
        return list(ids[:keep])
    if how == "tail":
        return list(ids[len(ids) - keep:])
    head = keep // 4
    return [*ids[:head], *ids[len(ids) - (keep - head):]]


def _pad(rows: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    width = max(1, max((len(r) for r in rows), default=1))
    out = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def encoded_length(item: Any) -> int:
    """Tokens in one encoded text: its ids, or word ids plus n-gram ids (word-vector body)."""
    if isinstance(item, tuple):
        return sum(len(x) for x in item)
    return len(item)


def sorted_batches(
    body: Any, encoded: Sequence[Any], batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """(rows, padded batch) over ``encoded`` in order of length, so little padding is computed."""
    order = np.argsort([encoded_length(e) for e in encoded], kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, body.batch([encoded[i] for i in rows])


class Body(nn.Module, ABC):
    """What a classifier reads texts with: texts -> padded ids -> one vector per text.

    ``kind`` names the family member in saved specs; :data:`BODY_KINDS` holds them all.
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width ``C`` of the vector per text."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[Any]:
        """One encoded item per text (ids, or what :meth:`batch` pads into tensors)."""

    @abstractmethod
    def batch(self, encoded: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Encoded items padded into the tensors :meth:`forward` takes."""

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, C)`` vectors of a padded batch."""

    @abstractmethod
    def blocks(self) -> list[list[nn.Module]]:
        """Trained parameter blocks from the bottom up, for gradual unfreezing."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The body's settings and shape, JSON-serialisable, with its ``kind``: the spec that
        :meth:`from_spec` makes it again from (saved in a classifier's ``warmstart.json``)."""

    @abstractmethod
    def save_vocabulary(self, folder: Path) -> None:
        """Write what the body reads texts with (its tokenizer or its words) into ``folder``."""

    @classmethod
    def from_spec(cls, spec: dict[str, Any], folder: Path) -> Body:
        """The body ``spec`` (from :meth:`describe`) describes, reading its vocabulary from
        ``folder`` (where :meth:`save_vocabulary` wrote it), with untrained weights.

        On ``Body`` itself, the member is chosen by ``spec["kind"]`` (:data:`BODY_KINDS`); a
        bad spec raises ``KeyError``, ``TypeError`` or ``ValueError``.
        """
        return BODY_KINDS[spec["kind"]].from_spec(spec, folder)


def read_words(folder: Path) -> list[str]:
    """The words a word-vector or TF-IDF body saved in ``folder``."""
    try:
        return list(json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise WarmstartError(f"{folder / VOCAB_FILE}: cannot read the vocabulary ({e})") from None


def write_words(folder: Path, words: Sequence[str]) -> None:
    """Save a word-vector or TF-IDF body's words in ``folder``."""
    (folder / VOCAB_FILE).write_text(json.dumps(list(words), ensure_ascii=False), encoding="utf-8")


class EncoderBody(Body):
    """A transformer encoder pooled to one vector per text."""

    kind = "encoder"

    def __init__(
        self, encoder: Encoder, tokenizer: tokenizers.Tokenizer, *, pooling: str = "mean",
        max_len: int = 256, truncation: str = "head", normalize: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise WarmstartError(f"--pooling {pooling}: use one of {', '.join(POOLINGS)}")
        if truncation not in TRUNCATIONS:
            raise WarmstartError(
                f"--truncation {truncation}: use one of {', '.join(TRUNCATIONS)}")
        self.truncation = truncation
        self.encoder = encoder
        # Folders made by sentence-transformers ship tokenizer.json with fixed padding (to 128)
        # and truncation switched on: every text would cost 128 positions. We cut and pad
        # ourselves, per batch.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_len = min(max_len, encoder.config.max_positions)

        def find(*names: str) -> int | None:
            return next((int(i) for n in names if (i := tokenizer.token_to_id(n)) is not None),
                        None)

        cls_id, sep_id = find("[CLS]", "<s>"), find("[SEP]", "</s>")
        if cls_id is None or sep_id is None:
            raise WarmstartError("the encoder's tokenizer has no [CLS]/[SEP] tokens")
        self.cls_id, self.sep_id = cls_id, sep_id
        self.pad_id = encoder.config.pad_id

    @property
    def dim(self) -> int:
        return self.encoder.config.hidden

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """[CLS] pieces [SEP], cut to ``max_len`` as ``truncation`` says: one id list per text."""
        enc = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        keep = self.max_len - 2
        return [[self.cls_id, *truncate(e.ids, keep, self.truncation), self.sep_id] for e in enc]

    def batch(self, encoded: Sequence[Any]) -> dict[str, torch.Tensor]:
        return {"ids": _pad(encoded, self.pad_id)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self._pool(batch["ids"])
        if self.normalize:  # in fp32: a bf16 norm is off by up to 0.4%
            return F.normalize(pooled.float(), dim=1)
        return pooled

    def _pool(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id
        hidden = self.encoder(ids, attention_mask=mask)  # (B, T, C)
        if self.pooling == "pooler":
            return self.encoder.pool(hidden)
        if self.pooling == "cls":
            return hidden[:, 0]
        # The mean in fp32: an encoder held in bf16 (hold_bf16_weights) would round it.
        m = mask.unsqueeze(-1).float()
        return (hidden.float() * m).sum(1) / m.sum(1).clamp_min(1.0)

    def hold_bf16_weights(self, precision: str) -> None:
        """Hold the encoder's weights in bf16 where ``precision`` computes in bf16 on the
        body's device (:func:`~warmstart.train.precision.uses_bf16`), for prediction only.

        Under bf16 autocast an fp32 encoder's weights are cast to bf16 again in every forward
        pass; cast once, a pass of one long text takes about a fifth less time on a CPU with
        AVX-512 BF16. Pooling and normalising stay in fp32. The body cannot be trained or
        saved in fp32 afterwards: call this only on a body loaded to predict or embed, after
        moving it to its device.
        """
        if uses_bf16(next(self.parameters()).device, precision):
            self.encoder.to(torch.bfloat16)

    def blocks(self) -> list[list[nn.Module]]:
        """Parameter blocks from the bottom up: embeddings, each layer (the pooler on top)."""
        e = self.encoder
        embeddings: list[nn.Module] = [e.tok_emb, e.pos_emb, e.type_emb, e.ln_emb]
        layers: list[list[nn.Module]] = [[layer] for layer in e.layers]
        layers[-1].append(e.pooler)
        return [embeddings, *layers]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "pooling": self.pooling, "normalize": self.normalize,
                "max_len": self.max_len, "truncation": self.truncation,
                "model": self.encoder.config.to_dict()}

    def save_vocabulary(self, folder: Path) -> None:
        self.tokenizer.save(str(folder / TOKENIZER_FILE))

    @classmethod
    def from_spec(cls, spec: dict[str, Any], folder: Path) -> EncoderBody:
        tok_path = folder / TOKENIZER_FILE
        if not tok_path.exists():
            raise WarmstartError(f"{folder}: the classifier has no {TOKENIZER_FILE}")
        encoder = Encoder(TransformerConfig.from_dict(spec["model"]))
        return cls(encoder, load_tokenizer(tok_path),
                   pooling=spec["pooling"], max_len=spec["max_len"],
                   truncation=spec.get("truncation", "head"),
                   normalize=bool(spec.get("normalize", False)))


_MASK64 = (1 << 64) - 1


def _ngram_buckets(hashes: Sequence[int], n_max: int, buckets: int) -> list[int]:
    """fastText's word n-gram ids: a rolling hash of each run of 2..n_max words, 1-based."""
    out = []
    for i in range(len(hashes)):
        h = hashes[i]
        for j in range(i + 1, min(i + n_max, len(hashes))):
            h = (h * 116_049_371 + hashes[j]) & _MASK64  # fastText's multiplier
            out.append(1 + h % buckets)
    return out


def _check_pooling(pooling: str) -> None:
    if pooling not in VECTOR_POOLINGS:
        raise WarmstartError(f"--pooling {pooling}: word vectors pool by "
                             f"{' or '.join(VECTOR_POOLINGS)}")


class WordVectorBody(Body):
    """fastText's supervised text model: mean of word and hashed n-gram embeddings (+ MLP)."""

    kind = "words"

    def __init__(
        self,
        words: Sequence[str],
        *,
        dim: int,
        tokenizer: Tokenizer,
        ngrams: int = 2,
        buckets: int = 200_000,
        hidden: int = 0,
        max_len: int = 1024,
        static_dim: int = 0,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        _check_pooling(pooling)
        self.pooling = pooling
        self.words = list(words)
        self.index = {w: i + 1 for i, w in enumerate(self.words)}  # 0 is padding
        self.tokenizer = tokenizer
        self.ngrams = ngrams
        self.buckets = buckets if ngrams > 1 else 0
        self.max_len = max_len
        self.word_emb = nn.Embedding(len(self.words) + 1, dim, padding_idx=0)
        self.ngram_emb = nn.Embedding(self.buckets + 1, dim, padding_idx=0)
        # fastText's initialisation: uniform in +-1/dim, so an average starts small.
        for emb in (self.word_emb, self.ngram_emb):
            nn.init.uniform_(emb.weight, -1.0 / dim, 1.0 / dim)
            with torch.no_grad():
                emb.weight[0].zero_()
        # The static channel (Kim 2014): a frozen copy of the pretrained vectors, averaged
        # over the words, beside the trained channel. Few labels cannot pull it away from what
        # pretraining learned, and the trained channel still learns words of its own.
        self.static_dim = static_dim
        self.static_emb = nn.Embedding(len(self.words) + 1, static_dim, padding_idx=0)
        nn.init.uniform_(self.static_emb.weight, -1.0 / max(dim, 1), 1.0 / max(dim, 1))
        with torch.no_grad():
            self.static_emb.weight[0].zero_()
        self.static_emb.requires_grad_(False)
        # The static channel's averages barely vary between long texts (an average of 200
        # word vectors is close to the corpus's mean vector), so they are standardised with
        # the training texts' mean and spread (fit_static); otherwise a head trained by
        # gradient descent would need enormous weights, and would not get there.
        self.static_mean: torch.Tensor
        self.static_std: torch.Tensor
        self.register_buffer("static_mean", torch.zeros(static_dim))
        self.register_buffer("static_std", torch.ones(static_dim))
        # mean+max: the elementwise max of the words' vectors beside their mean (SWEM-concat,
        # Shen et al. 2018): a word that stands out in one dimension is not averaged away.
        width = self._width(pooling)
        self.mlp = (nn.Sequential(nn.Linear(width, hidden), nn.ReLU()) if hidden
                    else nn.Identity())
        self.hidden = hidden
        self._dim = hidden or width

    def _width(self, pooling: str) -> int:
        """The pooled features' width: the mean (and max) of the words, and the static channel."""
        return (self.word_emb.embedding_dim * (2 if pooling == "mean+max" else 1)
                + self.static_dim)

    def with_pooling(self, pooling: str) -> WordVectorBody:
        """This body pooling by ``pooling``: the same vocabulary, tokenizer and embeddings,
        shared, not copied (so a second pooling of the same vectors builds no second
        vocabulary). A hidden layer's input width fixes the pooling, so it has none."""
        _check_pooling(pooling)
        if self.hidden:
            raise WarmstartError("a word-vector body with a hidden layer cannot change its "
                                 "pooling; build it with the pooling it needs")
        twin = copy.copy(self)
        twin.pooling = pooling
        twin._dim = twin._width(pooling)
        return twin

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], *, tokenizer: Tokenizer, min_count: int = 1,
        extra_words: Sequence[str] = (), **kw: Any,
    ) -> WordVectorBody:
        """A body whose vocabulary is the words of ``texts`` seen ``min_count`` times, and
        ``extra_words`` (e.g. the vocabulary of pretrained vectors)."""
        counts = Counter(w for t in texts for w in tokens_of(tokenizer, t))
        words = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
                 if c >= min_count]
        known = set(words)
        words += [w for w in extra_words if w not in known]
        return cls(words, tokenizer=tokenizer, **kw)

    def init_from(self, vectors: Any, *, trained: bool = True) -> int:
        """Copy pretrained vectors (a KeyedVectors) into the word embeddings; return how many.

        ``trained``: into the trained channel (else it keeps its random start); the static
        channel, if any, always gets them. Words the vectors lack keep their random start
        (with subword vectors, every word gets a vector composed from its character n-grams).
        """
        targets = [e for e, on in ((self.word_emb, trained), (self.static_emb, self.static_dim))
                   if on]
        for emb in targets:
            if vectors.dim != emb.embedding_dim:
                raise WarmstartError(
                    f"the vectors have dimension {vectors.dim} but the classifier "
                    f"{emb.embedding_dim}")
        found = 0
        for w, i in self.index.items():
            if vectors.has_vector(w):
                row = torch.from_numpy(np.asarray(vectors.get_vector(w), dtype=np.float32))
                for emb in targets:
                    emb.weight.detach()[i] = row
                found += 1
        return found

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(word ids, n-gram bucket ids) per text; unknown words are dropped, as in fastText."""
        out = []
        for text in texts:
            tokens = tokens_of(self.tokenizer, text)[: self.max_len]
            ids = [self.index.get(t, 0) for t in tokens]
            grams: list[int] = []
            if self.buckets:
                # Hashed from the words themselves, so n-grams of unknown words count too.
                hashes = [zlib.crc32(t.encode()) for t in tokens]
                grams = _ngram_buckets(hashes, self.ngrams, self.buckets)
            out.append(([i for i in ids if i], grams))
        return out

    def batch(self, encoded: Sequence[Any]) -> dict[str, torch.Tensor]:
        return {"ids": _pad([e[0] for e in encoded], 0),
                "ngrams": _pad([e[1] for e in encoded], 0)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, grams = batch["ids"], batch["ngrams"]
        total = self.word_emb(ids).sum(1) + self.ngram_emb(grams).sum(1)  # (B, C)
        count = ((ids != 0).sum(1) + (grams != 0).sum(1)).clamp_min(1).unsqueeze(1)
        features = total / count.to(total.dtype)
        if self.pooling == "mean+max":
            features = torch.cat([features, self._max(ids)], 1)
        if self.static_dim:
            features = torch.cat([features, (self._static(ids) - self.static_mean) / self.static_std], 1)
        return self.mlp(features)

    def _max(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, dim) elementwise max of each text's word vectors (0 for a text with none)."""
        vectors = self.word_emb(ids).masked_fill((ids == 0).unsqueeze(2), float("-inf"))
        top = vectors.max(1).values
        return torch.where(torch.isinf(top), torch.zeros_like(top), top)

    def _static(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, static_dim) mean of the static channel's vectors over each text's words."""
        n_words = (ids != 0).sum(1).clamp_min(1).unsqueeze(1)
        return self.static_emb(ids).sum(1) / n_words.to(self.static_emb.weight.dtype)

    @torch.no_grad()
    def fit_static(self, texts: Sequence[str], batch_size: int = 256) -> None:
        """Standardise the static channel (if any) with the mean and spread of ``texts``."""
        if not self.static_dim or not texts:
            return
        feats = torch.cat([self._static(batch["ids"])
                           for _, batch in sorted_batches(self, self.encode(texts), batch_size)])
        self.static_mean.copy_(feats.mean(0))
        self.static_std.copy_(feats.std(0, unbiased=False).clamp_min(1e-6))

    def blocks(self) -> list[list[nn.Module]]:
        """Trained parameter blocks (gradual unfreezing thaws these; the static channel stays)."""
        return [[self.word_emb, self.ngram_emb], [self.mlp]]

    def training_only_seen_rows(self, encoded: Iterable[Any]) -> AbstractContextManager[None]:
        """Train only the word and n-gram rows ``encoded`` looks up (same weights, faster)."""
        items = list(encoded)
        return train_seen_rows([(self, "word_emb", seen_ids(ids for ids, _ in items)),
                                (self, "ngram_emb", seen_ids(grams for _, grams in items))])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.word_emb.embedding_dim, "ngrams": self.ngrams,
                "buckets": self.buckets, "hidden": self.hidden, "max_len": self.max_len,
                "static_dim": self.static_dim, "pooling": self.pooling,
                "tokenizer": self.tokenizer.config()}

    def save_vocabulary(self, folder: Path) -> None:
        write_words(folder, self.words)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], folder: Path) -> WordVectorBody:
        words, tokenizer = read_words(folder), tokenizer_from_config(spec["tokenizer"])
        return cls(words, dim=spec["dim"], ngrams=spec["ngrams"], buckets=spec["buckets"] or 1,
                   hidden=spec["hidden"], max_len=spec["max_len"],
                   static_dim=spec.get("static_dim", 0), pooling=spec.get("pooling", "mean"),
                   tokenizer=tokenizer)


def tokenizer_from_config(config: dict[str, Any]) -> Tokenizer:
    """The word tokenizer a body's saved ``tokenizer`` config describes."""
    return make_tokenizer(config.get("name", "words"), lowercase=config.get("lowercase", False))


class TfidfBody(Body):
    """TF-IDF of words and word n-grams: the classic sparse text features, nothing trained.

    A text's features are its term counts (``1 + log(count)`` with ``sublinear``) times each
    term's smoothed inverse document frequency, ``ln((1 + n) / (1 + df)) + 1`` as in
    scikit-learn, scaled to unit length. Terms are the tokenizer's words and their runs of up
    to ``ngrams`` words (joined by a space), so Chinese text works with a Chinese tokenizer.
    ``forward`` gives dense (B, V) rows for a batch; :meth:`sparse_features` gives the same
    rows as a sparse matrix, for fitting a logistic regression on many texts.
    """

    kind = "tfidf"

    def __init__(
        self, terms: Sequence[str], *, tokenizer: Tokenizer, ngrams: int = 2,
        sublinear: bool = True, max_len: int = 4096,
    ) -> None:
        super().__init__()
        self.words = list(terms)  # saved as the classifier's vocabulary, like a word model's
        self.index = {t: i + 1 for i, t in enumerate(self.words)}  # 0 is padding
        self.tokenizer = tokenizer
        self.ngrams = ngrams
        self.sublinear = sublinear
        self.max_len = max_len
        self.idf: torch.Tensor
        self.register_buffer("idf", torch.ones(len(self.words) + 1))

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], *, tokenizer: Tokenizer, ngrams: int = 2, min_df: int = 2,
        max_terms: int = 200_000, **kw: Any,
    ) -> TfidfBody:
        """A body whose terms are those in at least ``min_df`` of ``texts`` (the ``max_terms``
        most frequent), with their inverse document frequencies over ``texts``."""
        body = cls([], tokenizer=tokenizer, ngrams=ngrams, **kw)
        df: Counter[str] = Counter()
        n = 0
        for text in texts:
            df.update(set(body.terms(text)))
            n += 1
        kept = [t for t, c in sorted(df.items(), key=lambda x: (-x[1], x[0])) if c >= min_df]
        if not kept:
            raise WarmstartError(f"TF-IDF: no term is in {min_df} or more of the {n} texts; "
                                 "lower --min-count")
        kept = kept[:max_terms]
        body = cls(kept, tokenizer=tokenizer, ngrams=ngrams, **kw)
        idf = [0.0] + [math.log((1 + n) / (1 + df[t])) + 1.0 for t in kept]
        body.idf.copy_(torch.tensor(idf))
        return body

    def terms(self, text: str) -> list[str]:
        """The terms of ``text``, once per occurrence: its words (the first ``max_len``), then
        its runs of 2 to ``ngrams`` words joined by a space."""
        words = tokens_of(self.tokenizer, text)[: self.max_len]
        terms = list(words)
        for k in range(2, self.ngrams + 1):
            terms += [" ".join(words[i:i + k]) for i in range(len(words) - k + 1)]
        return terms

    @property
    def dim(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The term ids of each text, once per occurrence; unknown terms are dropped."""
        index = self.index
        return [[i for i in (index.get(t, 0) for t in self.terms(text)) if i] for text in texts]

    def batch(self, encoded: Sequence[Any]) -> dict[str, torch.Tensor]:
        return {"ids": _pad(encoded, 0)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        counts = torch.zeros(ids.shape[0], len(self.words) + 1, dtype=self.idf.dtype,
                             device=ids.device)
        counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
        if self.sublinear:  # 1 + log(count) where the term occurs, as scikit-learn
            counts = torch.where(counts > 0, 1.0 + counts.clamp_min(1.0).log(), counts)
        x = (counts * self.idf)[:, 1:]  # the padding column's idf is 0
        return F.normalize(x, dim=1)

    def sparse_features(self, texts: Sequence[str]) -> Any:
        """(N, V) scipy CSR matrix of the texts' TF-IDF rows (the rows ``forward`` computes)."""
        from scipy import sparse

        encoded = self.encode(texts)
        rows = np.repeat(np.arange(len(encoded)), [len(e) for e in encoded])
        cols = np.fromiter((i - 1 for e in encoded for i in e), dtype=np.int64, count=len(rows))
        x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                              shape=(len(encoded), self.dim))  # duplicates are summed
        x.sum_duplicates()
        if self.sublinear:
            x.data = 1.0 + np.log(x.data)
        x = x.multiply(self.idf[1:].numpy()[None, :]).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        return sparse.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ x

    def blocks(self) -> list[list[nn.Module]]:
        return []  # nothing to train or thaw: only the head learns

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "ngrams": self.ngrams, "sublinear": self.sublinear,
                "max_len": self.max_len, "terms": len(self.words),
                "tokenizer": self.tokenizer.config()}

    def save_vocabulary(self, folder: Path) -> None:
        write_words(folder, self.words)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], folder: Path) -> TfidfBody:
        words, tokenizer = read_words(folder), tokenizer_from_config(spec["tokenizer"])
        return cls(words, tokenizer=tokenizer, ngrams=spec["ngrams"], sublinear=spec["sublinear"],
                   max_len=spec["max_len"])


#: Every kind of body by its ``kind``: what :meth:`Body.from_spec` chooses from.
BODY_KINDS: dict[str, type[Body]] = {
    cls.kind: cls for cls in (EncoderBody, WordVectorBody, TfidfBody)
}
