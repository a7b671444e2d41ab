"""Training budgets: steps, tokens, wall time and epochs, and how far along a run is.

The learning-rate schedule runs on *progress*, the largest fraction used of any budget set,
so a run given ``--time-budget 30m`` warms up and decays over those 30 minutes whatever
speed the machine turns out to have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmstart.errors import WarmstartError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float | int, *, option: str = "--time-budget") -> float:
    """Seconds in ``text``: ``90`` or ``90s``, ``30m``, ``2h``, ``1h30m``."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        s = text.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", s):
            seconds = float(s)
        elif s and re.fullmatch(r"(\d+(\.\d+)?[smhd])+", s):
            seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", s))
        else:
            raise WarmstartError(
                f"{option} {text!r}: not a duration; write e.g. 90s, 30m, 2h or 1h30m"
            )
    if seconds <= 0:
        raise WarmstartError(f"{option} {text!r}: must be positive")
    return seconds


@dataclass
class Budget:
    """The limits of a run; any that is set may end it, whichever comes first."""

    max_steps: int = 0
    max_tokens: int = 0
    seconds: float = 0.0
    #: a caller's deadline: the run stops after this many seconds, but unlike ``seconds`` it
    #: does not stretch or shrink the schedule (which follows the other limits)
    stop_after: float = 0.0

    def progress(self, *, step: int, tokens: int, elapsed: float) -> float:
        """The fraction of the budget used: the largest over the limits that are set."""
        used = [0.0]
        if self.max_steps:
            used.append(step / self.max_steps)
        if self.max_tokens:
            used.append(tokens / self.max_tokens)
        if self.seconds:
            used.append(elapsed / self.seconds)
        return min(1.0, max(used))

    def reached(self, *, step: int, tokens: int, elapsed: float) -> str | None:
        """The name of the limit that ends the run now, if any."""
        if self.max_steps and step >= self.max_steps:
            return "max_steps"
        if self.max_tokens and tokens >= self.max_tokens:
            return "max_tokens"
        if self.seconds and elapsed >= self.seconds:
            return "time_budget"
        if self.stop_after and elapsed >= self.stop_after:
            return "deadline"
        return None
