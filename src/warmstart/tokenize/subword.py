"""Subword tokenizers (BPE, WordPiece, Unigram) trained with Hugging Face ``tokenizers``.

A trained tokenizer is saved as an artifact folder of kind ``"tokenizer"``: ``tokenizer.json``
(the standard HF file, so any HF tool reads it) beside ``warmstart.json`` (settings and the
corpus it came from).

    >>> from warmstart.corpus import Corpus
    >>> tok = train_tokenizer(Corpus("news.txt"), out="tok", vocab_size=8000)  # doctest: +SKIP
    >>> load_tokenizer("tok").encode("Hello world").tokens                      # doctest: +SKIP
    ['[CLS]', 'hello', 'world', '[SEP]']

Every model has the same special tokens with the same ids, which the transformer objectives
rely on: ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, ``[MASK]`` 4.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from warmstart import artifact
from warmstart.artifact import TOKENIZER_FILE
from warmstart.config import check_settings, opt
from warmstart.corpus import text_batches
from warmstart.errors import WarmstartError, with_article

#: Special tokens, in id order (``[PAD]`` is 0 ... ``[MASK]`` is 4) for every model.
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Valid values of ``model`` (the CLI's ``--model``).
SUBWORD_MODELS: tuple[str, ...] = ("bpe", "wordpiece", "unigram")
#: The largest vocabulary we train (the Rust trainer aborts the process near 2**31).
MAX_VOCAB = 1 << 24

_BATCH = 1000  # texts handed to the Rust trainer per call: far fewer Python round trips
# ... and at most about this many characters: the trainer's memory grows with the text it
# holds, so a batch of long documents stops early.
_BATCH_CHARS = 1 << 20


@dataclass
class TokenizerConfig:
    """Settings of a subword tokenizer; the CLI options of ``tokenizer train`` carry the same
    names."""

    model: str = opt("wordpiece", "bpe (byte-level, GPT-2 style), wordpiece (BERT style) or "
                                  "unigram (SentencePiece style)")
    vocab_size: int = opt(8000, "tokens in the vocabulary, the special tokens included")
    min_frequency: int = opt(2, "bpe/wordpiece: ignore rarer pairs")
    lowercase: bool = opt(False, "lowercase text first")

    def validate(self) -> TokenizerConfig:
        """Raise :class:`WarmstartError` naming the option for any value out of range."""
        if self.model not in SUBWORD_MODELS:
            raise WarmstartError(
                f"--model {self.model!r}: unknown subword model; choose one of "
                f"{', '.join(SUBWORD_MODELS)}"
            )
        size = self.vocab_size
        if not isinstance(size, int) or not len(SPECIAL_TOKENS) < size <= MAX_VOCAB:
            raise WarmstartError(
                f"--vocab-size {size!r}: must be an integer above {len(SPECIAL_TOKENS)} "
                f"(the special tokens) and at most {MAX_VOCAB:,}; a few thousand is typical"
            )
        if not isinstance(self.min_frequency, int) or self.min_frequency < 1:
            raise WarmstartError(
                f"--min-frequency {self.min_frequency!r}: must be an integer of 1 or more"
            )
        return self


def _build(cfg: TokenizerConfig, *, progress: bool) -> tuple[tokenizers.Tokenizer, Any]:
    """An untrained tokenizer and its trainer, as ``cfg`` says."""
    model, vocab_size, min_frequency = cfg.model, cfg.vocab_size, cfg.min_frequency
    specials = list(SPECIAL_TOKENS)
    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    trainer: trainers.Trainer
    if model == "wordpiece":
        # As BERT: each CJK character is a word of its own. (BertPreTokenizer splits on
        # whitespace and punctuation only; the CJK split is BertNormalizer's job.)
        steps.append(
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
            )
        )
        tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[
                ("[CLS]", SPECIAL_TOKENS.index("[CLS]")),
                ("[SEP]", SPECIAL_TOKENS.index("[SEP]")),
            ],
        )
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            continuing_subword_prefix="##",
            show_progress=progress,
        )
    elif model == "bpe":
        # GPT-2 style byte-level BPE: every byte is in the alphabet, so nothing is unknown.
        tok = tokenizers.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=progress,
        )
    else:  # unigram
        tok = tokenizers.Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        # The Unigram trainer prunes by likelihood; it has no min_frequency.
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            unk_token="[UNK]",
            show_progress=progress,
        )
    if cfg.lowercase:
        steps.append(normalizers.Lowercase())
    tok.normalizer = normalizers.Sequence(steps)
    return tok, trainer


class _Batches:
    """Batches of texts for the trainer; remembers an error the texts raised.

    An exception raised inside ``train_from_iterator``'s callback does not reliably come back
    out of the Rust side as itself, so it is kept here, the batches end, and the caller
    re-raises it (a :class:`WarmstartError` from a corpus stays one).
    """

    def __init__(self, texts: Iterator[str]) -> None:
        self.texts = texts
        self.n_texts = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[list[str]]:
        try:
            for batch in text_batches(self.texts, max_docs=_BATCH, max_chars=_BATCH_CHARS):
                self.n_texts += len(batch)
                yield batch
        except Exception as e:
            self.error = e


def train_tokenizer(
    texts: Iterable[str],
    *,
    out: str | os.PathLike[str],
    config: TokenizerConfig | None = None,
    progress: bool = True,
    corpus_info: dict[str, Any] | None = None,
    **options: Any,
) -> tokenizers.Tokenizer:
    """Train a subword tokenizer on ``texts`` and save it as a tokenizer artifact at ``out``
    (``warmstart tokenizer train``).

    ``options`` are :class:`TokenizerConfig` fields (over ``config``): ``model`` is
    ``"bpe"`` (byte-level, GPT-2 style), ``"wordpiece"`` (BERT style: adds ``[CLS] ...
    [SEP]`` when encoding) or ``"unigram"`` (SentencePiece style, ``▁`` marks a word start);
    ``vocab_size``; ``min_frequency`` (ignored by ``"unigram"``); text is NFKC-normalised,
    and lowercased when ``lowercase`` is true. ``corpus_info`` goes to the artifact's
    ``data`` field; when it is ``None`` and ``texts`` has a ``describe()`` method (a
    :class:`~warmstart.corpus.Corpus`), that is used.

    Returns the trained ``tokenizers.Tokenizer``. Raises
    :class:`~warmstart.errors.WarmstartError` for a bad option, an unusable ``out`` or
    no texts at all.
    """
    values = {**(asdict(config) if config else {}), **options}
    check_settings(TokenizerConfig, values, where="tokenizer settings")
    cfg = TokenizerConfig(**values).validate()
    if corpus_info is None and callable(getattr(texts, "describe", None)):
        corpus_info = texts.describe()  # type: ignore[attr-defined]

    with artifact.building(out) as folder:
        tok, trainer = _build(cfg, progress=progress)
        batches = _Batches(iter(texts))
        tok.train_from_iterator(batches, trainer, length=None)
        if batches.error is not None:
            raise batches.error
        if batches.n_texts == 0:
            raise WarmstartError(
                "no texts to train the tokenizer on; check the corpus paths and --text-field"
            )
        tok.save(str(folder / TOKENIZER_FILE))
        artifact.write_meta(
            folder,
            kind="tokenizer",
            config={**asdict(cfg), "special_tokens": list(SPECIAL_TOKENS)},
            data=corpus_info,
            extra={"n_vocab": tok.get_vocab_size()},
        )
    return tok


def load_tokenizer(path: str | os.PathLike[str], *, option: str = "") -> tokenizers.Tokenizer:
    """Load a subword tokenizer from an artifact folder, a folder or a ``tokenizer.json``.

    ``path`` may be a warmstart artifact folder holding ``tokenizer.json`` (a tokenizer
    artifact, or a model artifact that carries its tokenizer), any folder with a
    ``tokenizer.json`` (e.g. a Hugging Face model folder), or the ``tokenizer.json`` file
    itself. Anything else raises :class:`~warmstart.errors.WarmstartError`, whose message
    starts with ``option`` (e.g. ``--tokenizer``) when the path came from one.
    """
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if path.is_dir():
        file = path / TOKENIZER_FILE
        if (path / artifact.META_FILE).exists():
            meta = artifact.read_meta(path)  # checks the format version
            if not file.exists():
                raise WarmstartError(
                    f"{where}: is {with_article(repr(meta.get('kind')))} artifact without a {TOKENIZER_FILE}; "
                    "a tokenizer artifact (from training a subword tokenizer) is needed here"
                )
        elif not file.exists():
            raise WarmstartError(
                f"{where}: no {TOKENIZER_FILE} in this folder; give a tokenizer artifact, a "
                f"Hugging Face model folder or a {TOKENIZER_FILE} file"
            )
    elif path.is_file():
        file = path
    else:
        raise WarmstartError(f"{where}: no such tokenizer file (no such file or folder); make one "
                             f"with `warmstart tokenizer train`, or give a {TOKENIZER_FILE} or a "
                             "folder holding one")
    try:
        return tokenizers.Tokenizer.from_file(str(file))
    except Exception as e:  # the Rust side raises a plain Exception for any bad file
        raise WarmstartError(
            f"{option + ' ' if option else ''}{file}: not a valid Hugging Face {TOKENIZER_FILE} "
            f"({e}); re-create the tokenizer"
        ) from None
