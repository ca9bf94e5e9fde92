"""The console's memory of the last hour, shared by every worker through the store.

Each worker keeps nothing but the difference between its Prometheus counters now and at its last
flush. Once a second a background thread (a greenlet under gevent) adds that difference to the
current minute's record in the store (``console:minute:<unix minute>``, kept two hours) and puts
the callbacks it answered since then at the head of ``console:recent`` (the newest
:data:`RECENT_LIMIT`), under a short store lock so two workers never lose each other's counts.
The console reads the last 60 minute records: callbacks by outcome, answer times by bucket,
deliveries by result and errcode.

The thread starts with the first request of a process and ends after :data:`IDLE_EXIT_SECONDS`
with nothing to flush; the next request starts it again.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.infra.metrics import ANSWER_SECONDS, CALLBACKS, DELIVERIES, CallbackNote

log = logging.getLogger(__name__)

MINUTE_TTL = 2 * 3600.0
RECENT_LIMIT = 50
LOCK = "console:flush"
FLUSH_SECONDS = 1.0
IDLE_EXIT_SECONDS = 600.0


def minute_key(minute: int) -> str:
    return f"console:minute:{minute}"


RECENT_KEY = "console:recent"


def snapshot() -> collections.Counter[str]:
    """This process's counters as flat keys: ``outcome:passive``, ``le:4.5``,
    ``delivery:dead:81013``. Histogram buckets are cumulative (as Prometheus keeps them)."""
    counts: collections.Counter[str] = collections.Counter()
    for metric in CALLBACKS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counts[f"outcome:{sample.labels['outcome']}"] += sample.value
    for metric in ANSWER_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                counts[f"le:{sample.labels['le']}"] += sample.value
    for metric in DELIVERIES.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                counts[f"delivery:{labels['result']}:{labels['errcode']}"] += sample.value
    return counts


@dataclass
class Minute:
    start: float  # unix time of the minute's start
    counts: dict[str, float]

    def get(self, key: str) -> float:
        return self.counts.get(key, 0.0)


class History:
    """Per process: flushes counter differences and recent callbacks into the store."""

    def __init__(
        self,
        store: Callable[[], Any],
        clock: Callable[[], float] = time.time,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._store = store
        self.clock = clock
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()  # guards the buffers
        self._flush_lock = threading.Lock()  # one flush at a time, or a difference counts twice
        self._base = snapshot()
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_LIMIT)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = threading.Event()

    # -- recording ---------------------------------------------------------------------------
    def record(self, note: CallbackNote, ms: float) -> None:
        entry = {
            "at": round(self.clock(), 3),
            "endpoint": note.endpoint,
            "kind": note.kind,
            "msgtype": note.msgtype,
            "id": note.ident,
            "outcome": note.outcome,
            "reason": note.reason,
            "ms": ms,
            "pid": os.getpid(),
        }
        if note.content is not None:
            entry["content"] = note.content
        with self._lock:
            self._recent.append(entry)
        self.ensure_running()

    # -- the background flush ----------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start this process's flush thread unless it runs (cheap enough for every request)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's counts are not ours to flush
                self._pid, self._base = os.getpid(), snapshot()
                self._recent.clear()
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run, name="wecom-console-history", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()

    def _run(self) -> None:
        idle = 0.0
        while not self._stopping.wait(self.flush_seconds):
            try:
                flushed = self.flush()
            except Exception:
                log.exception("console history: flush failed; will retry")
                flushed = True
            idle = 0.0 if flushed else idle + self.flush_seconds
            if idle >= IDLE_EXIT_SECONDS:
                return

    def flush(self) -> bool:
        """Add what changed since the last flush to the store; False when nothing had."""
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> bool:
        with self._lock:
            current = snapshot()
            delta = current - self._base
            recent = list(self._recent)
        if not delta and not recent:
            return False
        store = self._store()
        now = self.clock()
        owner = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if not store.acquire_lock(LOCK, owner, now + 5.0, now):
            return True  # another worker is flushing; ours waits for the next tick
        try:
            key = minute_key(int(now // 60))
            record = _loads(store.get_value(key, now), {})
            for name, value in delta.items():
                record[name] = record.get(name, 0) + value
            store.set_value(key, json.dumps(record, separators=(",", ":")), now + MINUTE_TTL)
            if recent:
                kept = _loads(store.get_value(RECENT_KEY, now), [])
                merged = (list(reversed(recent)) + kept)[:RECENT_LIMIT]
                store.set_value(
                    RECENT_KEY, json.dumps(merged, ensure_ascii=False), now + MINUTE_TTL
                )
        finally:
            store.release_lock(LOCK, owner)
        with self._lock:
            self._base = current
            for _ in range(min(len(recent), len(self._recent))):
                self._recent.popleft()
        return True

    # -- reading -----------------------------------------------------------------------------
    def minutes(self, count: int = 60) -> list[Minute]:
        """The last ``count`` minutes, oldest first (this process's latest counts included)."""
        self.flush()
        store = self._store()
        now = self.clock()
        current = int(now // 60)
        result = []
        for minute in range(current - count + 1, current + 1):
            counts = _loads(store.get_value(minute_key(minute), now), {})
            result.append(Minute(minute * 60.0, counts if isinstance(counts, dict) else {}))
        return result

    def recent(self) -> list[dict[str, Any]]:
        """The newest callbacks first, at most :data:`RECENT_LIMIT`."""
        self.flush()
        store = self._store()
        entries = _loads(store.get_value(RECENT_KEY, self.clock()), [])
        return [entry for entry in entries if isinstance(entry, dict)]


def _loads(raw: str | None, default: Any) -> Any:
    if raw is None:
        return default
    try:
        value = json.loads(raw)
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default
