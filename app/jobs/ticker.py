"""A background loop: one daemon thread (a greenlet under gevent) calling a function regularly."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from app.jobs.failures import is_shutdown

log = logging.getLogger(__name__)


class Ticker:
    """A daemon thread (a greenlet under gevent) calling ``tick`` every ``interval`` seconds, first
    at once, until stopped; a failing tick is logged and the next one runs as usual."""

    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], None],
        stopping: threading.Event | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.tick = tick
        #: Set by :meth:`stop`; pass an event to let other work see the stop too.
        self.stopping = stopping if stopping is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        #: True from start until the loop ends: read on every request, so a plain attribute
        #: rather than ``Thread.is_alive`` (a lock acquisition under gevent).
        self._alive = False
        self._alive_pid = 0  # a forked child inherits the flag, not the thread

    def start(self) -> None:
        """Start the thread unless it runs already; safe to call from many requests at once."""
        with self._start_lock:
            if self.running:
                return
            self.stopping.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._alive, self._alive_pid = True, os.getpid()
            try:
                self._thread.start()
            except BaseException:
                self._alive = False
                raise

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._alive and self._alive_pid == os.getpid()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.tick()
                except BaseException as exc:  # the loop outlives anything a tick raises
                    if is_shutdown(exc):
                        raise
                    log.exception("%s: iteration failed; continuing", self.name)
                self.stopping.wait(self.interval)
        finally:
            self._alive = False


class RunsOnTicker:
    """Start, stop and ``running`` for a class whose background work is its ``_ticker``."""

    _ticker: Ticker

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._ticker.stop(timeout)

    @property
    def running(self) -> bool:
        return self._ticker.running
