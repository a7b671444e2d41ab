"""Tokenizers: word-level ones behind one small interface, and trained subword ones.

Word-level tokenizers (this module and :mod:`warmstart.tokenize.words`) turn a document into a
list of word strings, for word-vector training. They are made by name and described by a
JSON-serialisable config that re-makes them:

    >>> tok = make_tokenizer("words", lowercase=True)
    >>> tok.tokenize("Don't panic!<br />It's state-of-the-art.")
    ["don't", 'panic', '!', "it's", 'state-of-the-art', '.']
    >>> make_tokenizer(**tok.config()).tokenize("Hi") == tok.tokenize("Hi")
    True

Subword tokenizers (BPE, WordPiece, Unigram; Hugging Face ``tokenizers``) are trained and
loaded with :mod:`warmstart.tokenize.subword`, imported separately because they need the
``tokenizers`` package.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from warmstart.errors import WarmstartError
from warmstart.tokenize.words import TOKENIZERS, looks_chinese

#: Valid names for :func:`make_tokenizer` (and the CLI's ``--tokenizer``).
TOKENIZER_NAMES: tuple[str, ...] = tuple(TOKENIZERS)

__all__ = ["TOKENIZER_NAMES", "Tokenizer", "looks_chinese", "make_tokenizer"]


@runtime_checkable
class Tokenizer(Protocol):
    """What every word-level tokenizer offers.

    ``name`` is its registry name; ``tokenize`` splits one document into tokens; ``config``
    returns a JSON-serialisable dict such that ``make_tokenizer(**tok.config())`` makes an
    equivalent tokenizer (it is what artifacts store).
    """

    name: str

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into tokens."""
        ...

    def config(self) -> dict[str, Any]:
        """Settings that re-make this tokenizer through :func:`make_tokenizer`."""
        ...


def make_tokenizer(name: str = "words", *, lowercase: bool = False) -> Tokenizer:
    """Make the word-level tokenizer called ``name``.

    Names: ``"words"`` (Unicode-aware words and symbols; Han runs kept whole),
    ``"whitespace"`` (``str.split``, for pre-tokenized text), ``"tagged"`` (``word/tag``
    tokens, e.g. People's Daily), ``"jieba"`` (Chinese word segmentation), ``"chars"``
    (one token per Han character). ``lowercase=True`` lowercases the text first.

    Raises :class:`~warmstart.errors.WarmstartError` for an unknown name.
    """
    try:
        cls = TOKENIZERS[name]
    except (KeyError, TypeError):
        raise WarmstartError(
            f"--tokenizer {name!r}: unknown tokenizer; choose one of {', '.join(TOKENIZER_NAMES)}"
        ) from None
    return cls(lowercase=lowercase)
