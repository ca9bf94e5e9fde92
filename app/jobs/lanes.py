"""Run tasks one at a time per key (a customer), many keys at once, on a bounded set of threads.

Under gunicorn's gevent worker ``threading`` is patched, so the threads are greenlets; the
primitives are looked up at call time for that reason.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable

from app.jobs.failures import is_shutdown

log = logging.getLogger(__name__)

Task = Callable[[], None]


class Lanes:
    """Tasks of one key run in submission order (``first=True`` jumps the key's queue) and never
    two at a time; different keys run concurrently, at most ``max_workers`` tasks overall."""

    def __init__(self, max_workers: int = 32, name: str = "wecom-kf-lane") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._queues: dict[Hashable, collections.deque[Task]] = {}
        self._ready: collections.deque[Hashable] = collections.deque()  # keys with work, idle
        self._busy: set[Hashable] = set()  # keys with a task running
        self._workers = 0
        self._pending = 0  # submitted and not finished

    def submit(self, key: Hashable, task: Task, *, first: bool = False) -> None:
        with self._cond:
            queue = self._queues.setdefault(key, collections.deque())
            if first:
                queue.appendleft(task)
            else:
                queue.append(task)
            self._pending += 1
            if key not in self._busy:
                if key in self._ready:
                    if first:
                        self._ready.remove(key)
                        self._ready.appendleft(key)
                elif first:
                    self._ready.appendleft(key)
                else:
                    self._ready.append(key)
            if self._ready and self._workers < self.max_workers:
                self._workers += 1
                threading.Thread(target=self._work, name=self.name, daemon=True).start()

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted task has finished; False when ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._ready:
                    self._workers -= 1
                    return
                key = self._ready.popleft()
                self._busy.add(key)
                task = self._queues[key].popleft()
            try:
                task()
            except BaseException as exc:  # a task records its own failure; never lose the lane
                if is_shutdown(exc):
                    raise
                log.exception("kf task for %s failed", key)
            finally:
                with self._cond:
                    self._busy.discard(key)
                    self._pending -= 1
                    if self._queues[key]:
                        self._ready.append(key)
                    else:
                        del self._queues[key]
                    self._cond.notify_all()
