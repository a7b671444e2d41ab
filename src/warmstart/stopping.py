"""A graceful stop for long runs: SIGINT/SIGTERM become a flag the run checks between steps.

The word-vector trainer and the training loop check it, save a checkpoint and raise
:class:`~warmstart.errors.RunInterrupted`, so Ctrl-C or a scheduler's SIGTERM loses nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class StopOnSignal:
    """While entered, SIGINT and SIGTERM set :attr:`signal` instead of ending the process.

        >>> with StopOnSignal() as stop:                    # doctest: +SKIP
        ...     while not stop.requested:
        ...         step()

    Signal handlers can only be set in the main thread; elsewhere, or with ``active=False``,
    nothing is caught and the flag stays down. The previous handlers come back on exit.
    """

    def __init__(self, *, active: bool = True) -> None:
        self.active = active
        self.signal: int | None = None  # the signal that asked to stop, if one did
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether a signal asked the run to stop."""
        return self.signal is not None

    def __enter__(self) -> StopOnSignal:
        if self.active and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
