"""The one error type a user can meet.

Anything the user can fix (a bad path, a missing column, a wrong artifact kind, a bad option
value) is raised as :class:`WarmstartError` with a message that names the file, line or option
and says what to do. The CLI prints the message without a traceback and exits with status 2.
Every other exception is a bug.
"""

from __future__ import annotations


def with_article(noun: str) -> str:
    """``noun`` after its indefinite article, for messages: "an encoder", "a 'vectors'"."""
    return f"{'an' if noun.strip(chr(39)).lower()[:1] in tuple('aeiou') else 'a'} {noun}"


class WarmstartError(Exception):
    """A mistake in the user's input, reported with what to do about it."""


class RunInterrupted(WarmstartError):
    """A long run was stopped (SIGINT/SIGTERM) after saving a checkpoint it can resume from."""
