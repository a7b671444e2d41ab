"""Word-level tokenizers, one small class each; made by name with ``make_tokenizer``.

All of them share ``name``, ``lowercase``, ``tokenize(text) -> list[str]`` and ``config()``.
Lowercasing is applied to the whole text before splitting (one C call, not one per token).
The way back, :func:`join_words`, turns a list of words into text again (what augmenters do
after editing a text's words), with :func:`placed_words` to keep the spacing of the original.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

from warmstart.errors import WarmstartError

#: Han ideographs (CJK Unified Ideographs, extensions A-H, compatibility ideographs) and the
#: ideographic iteration mark and number zero, as the inside of a regex character class:
#: ``re.compile(f"[{HAN_RANGES}]+")`` matches a run of Han. Planes 2 and 3 hold nothing but Han.
HAN_RANGES = (
    "\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003ffff"
)
# Internal joiners kept inside a word: apostrophes (ASCII and typographic) and hyphens.
_JOINERS = "'\u2019\\-\u2010\u2011"
_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _word_regex() -> str:
    """A regex for one word (Han excluded): letters, digits, underscore and combining marks.

    Python's ``\\w`` misses combining marks, which would cut Devanagari, Thai or decomposed
    accents into pieces; a plain class of all word characters, though, is several times
    slower than ``\\w``. So a word is runs of ``[^\\W<Han>]`` (fast) with runs of marks
    allowed between them. The mark class is built from Unicode categories on first use; it
    covers the Basic Multilingual Plane (astral marks, in historic scripts, are left out
    because each astral range makes every word end slower to match).
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    marks = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    letters = f"[^\\W{HAN_RANGES}]"
    return f"{letters}+(?:[{marks}]+{letters}*)*"


@functools.lru_cache(maxsize=1)
def _words_pattern() -> re.Pattern[str]:
    w = _word_regex()
    return re.compile(f"[{HAN_RANGES}]+|{w}(?:[{_JOINERS}]{w})*|\\S")


@functools.lru_cache(maxsize=1)
def _chars_pattern() -> re.Pattern[str]:
    w = _word_regex()
    return re.compile(f"[{HAN_RANGES}]|{w}(?:[{_JOINERS}]{w})*|\\S")


class _WordTokenizer:
    """Shared plumbing: the name, the lowercase flag, ``config`` and ``repr``."""

    name = ""

    def __init__(self, *, lowercase: bool = False) -> None:
        self.lowercase = bool(lowercase)

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into tokens."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Settings that re-make this tokenizer: ``make_tokenizer(**tok.config())``."""
        return {"name": self.name, "lowercase": self.lowercase}

    def __repr__(self) -> str:
        return f"make_tokenizer({self.name!r}, lowercase={self.lowercase})"


class WordsTokenizer(_WordTokenizer):
    """Unicode words and symbols: the default for space-separated languages.

    A token is a run of word characters (letters, digits, marks, underscore, in any script)
    that may hold internal apostrophes or hyphens (``don't``, ``state-of-the-art``), a run of
    Han characters (left whole: use ``"jieba"`` or ``"chars"`` to segment Chinese), or any
    other single non-space character. HTML line breaks (``<br />``) count as spaces.

        >>> WordsTokenizer().tokenize("Don't stop<br />now: it's state-of-the-art!")
        ["Don't", 'stop', 'now', ':', "it's", 'state-of-the-art', '!']
    """

    name = "words"

    def __init__(self, *, lowercase: bool = False) -> None:
        super().__init__(lowercase=lowercase)
        self._findall = _words_pattern().findall

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into words and symbols."""
        if self.lowercase:
            text = text.lower()
        if "<" in text:
            text = _BR_TAG.sub(" ", text)
        return self._findall(text)


class WhitespaceTokenizer(_WordTokenizer):
    """``str.split()``: for text that is already tokenized, one space between tokens.

    >>> WhitespaceTokenizer().tokenize("a  pre-tokenized\\tline ")
    ['a', 'pre-tokenized', 'line']
    """

    name = "whitespace"

    def __init__(self, *, lowercase: bool = False) -> None:
        super().__init__(lowercase=lowercase)
        # The hot path of word-vector training on token files: an instance attribute that is
        # the C function itself, so a call costs what str.split costs.
        if not self.lowercase:
            self.tokenize = str.split  # type: ignore[method-assign,assignment]

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` on runs of whitespace (lowercased first if asked)."""
        if self.lowercase:
            text = text.lower()
        return text.split()


class TaggedTokenizer(_WordTokenizer):
    """Words of ``word/tag`` text (People's Daily style), tags and compound brackets removed.

    A bracketed compound ``[中央/n  人民/n  广播/vn  电台/n]nt`` gives its words; a token
    without a ``/`` passes through unchanged.

        >>> TaggedTokenizer().tokenize("迈向/v  充满/v  [中央/n  电台/n]nt  。/w")
        ['迈向', '充满', '中央', '电台', '。']
    """

    name = "tagged"

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` on whitespace and strip each token's ``/tag``."""
        if self.lowercase:
            text = text.lower()
        words = []
        for token in text.split():
            word, slash, _tag = token.rpartition("/")
            if not slash:
                words.append(token)
                continue
            if word.startswith("[") and len(word) > 1:
                word = word[1:]
            if word:
                words.append(word)
        return words


_jieba_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _jieba() -> Any:
    """Import and initialise jieba once, without its start-up chatter on stderr."""
    with _jieba_lock:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        return jieba


_HAN_RUN = re.compile(f"[{HAN_RANGES}]+")
_HAN_WORD = re.compile(f"\\d*[{HAN_RANGES}]+\\d*")  # a whole segmented word: Han, maybe with digits


def looks_chinese(texts: list[str] | tuple[str, ...], *, sample: int = 500) -> bool:
    """Whether the first ``sample`` texts are mostly Han characters (a fifth of their letters
    or more): Chinese text, which the ``words`` tokenizer would keep in whole runs."""
    chars = sum(len(t) - sum(c.isspace() for c in t) for t in texts[:sample])
    han = sum(len(run) for t in texts[:sample] for run in _HAN_RUN.findall(t))
    return chars > 0 and han >= 0.2 * chars


def _looks_segmented(parts: list[str], text: str) -> bool:
    """Whether Chinese ``text`` (split into ``parts`` on whitespace) is already segmented.

    In segmented text the runs of Han are short (words average under two characters) and
    nearly every token holding Han is one word (Han, perhaps with digits: ``1998年``). Raw
    text with an occasional space, common in reviews, has long runs glued to punctuation or
    Latin letters. jieba never joins across whitespace, so erring towards segmenting costs
    little.
    """
    if len(parts) < 2:
        return False
    runs = _HAN_RUN.findall(text)
    if not runs or sum(map(len, runs)) > 3 * len(runs):
        return False
    han_parts = [p for p in parts if _HAN_RUN.search(p)]
    whole = sum(1 for p in han_parts if _HAN_WORD.fullmatch(p))
    return whole >= 0.8 * len(han_parts)


class JiebaTokenizer(_WordTokenizer):
    """Chinese word segmentation with jieba (accurate mode, HMM on for unknown words).

    Chinese text that is already segmented (Han runs of at most 3 characters on average, and
    at least 80% of the whitespace-separated tokens holding Han are one Han word, digits
    allowed) is split on whitespace and not segmented again. Everything
    else goes through jieba: raw Chinese (even with an occasional space, common in reviews),
    mixed text and text with no Han at all; ASCII words and numbers come out whole,
    punctuation as its own tokens, whitespace tokens are dropped. jieba is imported on first use.

        >>> JiebaTokenizer().tokenize("我来到北京清华大学")   # doctest: +SKIP
        ['我', '来到', '北京', '清华大学']
    """

    name = "jieba"

    def tokenize(self, text: str) -> list[str]:
        """Segment ``text`` into words."""
        if self.lowercase:
            text = text.lower()
        parts = text.split()
        if _looks_segmented(parts, text):
            return parts
        return [t for t in _jieba().lcut(text, HMM=True) if not t.isspace()]


class CharsTokenizer(_WordTokenizer):
    """One token per Han character (and per punctuation mark); other words stay whole.

    >>> CharsTokenizer().tokenize("我用Python 3写代码。")
    ['我', '用', 'Python', '3', '写', '代', '码', '。']
    """

    name = "chars"

    def __init__(self, *, lowercase: bool = False) -> None:
        super().__init__(lowercase=lowercase)
        self._findall = _chars_pattern().findall

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into Han characters, other words and symbols."""
        if self.lowercase:
            text = text.lower()
        return self._findall(text)


#: Word-level tokenizer classes by name, in the order the CLI lists them.
TOKENIZERS: dict[str, type[_WordTokenizer]] = {
    cls.name: cls
    for cls in (
        WordsTokenizer,
        WhitespaceTokenizer,
        TaggedTokenizer,
        JiebaTokenizer,
        CharsTokenizer,
    )
}


# -- joining words back into text ------------------------------------------------------------

#: How words are joined back into text (``join=``). ``auto``: words that were neighbours in
#: the text keep what stood between them; other pairs get a space, except next to a CJK
#: character (Chinese and Japanese are written without spaces), before closing punctuation and
#: after opening brackets. ``space``: one space between all words. ``none``: no spaces.
JOINS = {"auto": None, "space": " ", "none": ""}
# Han, CJK punctuation, kana, full-width forms: no space on either side of these.
_CJK = re.compile(f"[{HAN_RANGES}\u3000-\u303f\u3040-\u30ff\uff00-\uffef]")
_CLOSING, _OPENING = ",.!?;:%)]}", "([{"


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
    sep = join_separator(join)
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


def join_separator(join: str) -> str | None:
    """The one separator ``join`` puts between all words, None for ``auto``; a name not in
    :data:`JOINS` is an error naming ``--join``."""
    if join not in JOINS:
        raise WarmstartError(f"--join {join!r}: use one of {', '.join(JOINS)}")
    return JOINS[join]
