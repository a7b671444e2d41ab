"""Tokens remembered per text, for runs that read the same texts many times.

``--recipe auto`` splits the same labeled and unlabeled texts into words again and again: for
each view's vocabulary and features, for every fold's word-vector students, for the final fit.
With jieba (Chinese word segmentation, pure Python) that was 42% of the demo's auto run. Inside
``with remember_tokens():`` the bodies' :func:`tokens_of` splits each (tokenizer, text) once
and then reads the tokens back; outside it, it simply calls the tokenizer.

    >>> from warmstart.tokenize import make_tokenizer
    >>> tok = make_tokenizer("words")
    >>> with remember_tokens():
    ...     tokens_of(tok, "a b") == tokens_of(tok, "a b") == ["a", "b"]
    True

What is remembered lives as long as the ``with`` block (and at most ``max_texts`` texts, so a
run over a huge file keeps flat memory: texts beyond it are split every time). Tokens are
interned: a word met in many texts is stored once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from warmstart.tokenize import Tokenizer

#: The texts remembered at most, by default (a few hundred bytes each for a short review).
MAX_TEXTS = 200_000

_memo: ContextVar[_Memo | None] = ContextVar("warmstart_tokens", default=None)


class _Memo:
    def __init__(self, max_texts: int) -> None:
        self.max_texts = max_texts
        self.size = 0
        self.by_tokenizer: dict[tuple[str, bool], dict[str, tuple[str, ...]]] = {}


@contextmanager
def remember_tokens(max_texts: int = MAX_TEXTS) -> Iterator[None]:
    """Within the block, :func:`tokens_of` splits each text once per tokenizer."""
    token = _memo.set(_Memo(max_texts))
    try:
        yield
    finally:
        _memo.reset(token)


def tokens_of(tokenizer: Tokenizer, text: str) -> list[str]:
    """``tokenizer.tokenize(text)``, read back from memory inside :func:`remember_tokens`."""
    memo = _memo.get()
    if memo is None:
        return tokenizer.tokenize(text)
    # A word tokenizer is made by its name and case alone (``make_tokenizer``).
    key = (tokenizer.name, bool(getattr(tokenizer, "lowercase", False)))
    texts = memo.by_tokenizer.setdefault(key, {})
    found = texts.get(text)
    if found is None:
        tokens = tokenizer.tokenize(text)
        if memo.size >= memo.max_texts:
            return tokens
        found = texts[text] = tuple(map(sys.intern, tokens))
        memo.size += 1
    return list(found)
