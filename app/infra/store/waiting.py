"""Waiting for a store that someone else holds, without stopping the rest of the process.

A store operation that finds the store locked (another process's transaction) waits in short
sleeps. Under gevent ``time.sleep`` yields to the other greenlets, so a waiting request never
stops the event loop the way a blocking lock wait inside SQLite would. How long it waits is the
store's own bound, shortened by :func:`patience` for the calls inside that block: a callback
waits no longer than its reply budget, ``/healthz`` not at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

FIRST_PAUSE = 0.002
LONGEST_PAUSE = 0.05

_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "wecom_store_patience", default=None
)


class StoreBusy(RuntimeError):
    """The store stayed locked by someone else for longer than the caller could wait."""


@contextlib.contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Store calls in this block (this thread or greenlet) wait at most ``seconds`` for a lock."""
    token = _patience.set(max(seconds, 0.0))
    try:
        yield
    finally:
        _patience.reset(token)


def wait_deadline(longest: float) -> float:
    """The monotonic time until which an operation starting now may wait: ``longest``, or the
    caller's :func:`patience` if shorter."""
    limit = _patience.get()
    return time.monotonic() + (longest if limit is None else min(longest, limit))


def gave_up(what: str) -> StoreBusy:
    return StoreBusy(f"{what} is locked by another process; gave up waiting")


class Waiter:
    """One operation's wait: ``pause()`` between attempts until the deadline, then StoreBusy."""

    def __init__(self, longest: float, what: str) -> None:
        self.deadline = wait_deadline(longest)
        self.what = what
        self.pause_for = FIRST_PAUSE

    def pause(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise gave_up(self.what)
        time.sleep(min(self.pause_for, left))
        self.pause_for = min(self.pause_for * 2, LONGEST_PAUSE)
