"""What a running service shows from outside: its store (read-only), its log, its processes.

Scenario B (bench/slow_callbacks.py) reads these after a burst; none of them writes anything.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from .common import Server, cpu_busy_seconds, cpu_seconds

ACTIVE_STATES = ("running", "deferred", "outbox")  # a job that may still reach message/send
# The service's line per answered callback (app/web/callback_log.py), text log format.
CALLBACK_LINE = re.compile(
    r"\[(\d+)\] INFO app\.callbacks: callback \S+ \S+ MsgId=(\d+) (\S+) ([\d.]+) ms"
)


class CallbackLine(NamedTuple):
    pid: int  # the worker that answered
    outcome: str  # passive, deferred, retry ...
    seconds: float  # from entering the app to the answer, as the service timed it


def callback_lines(output: str) -> dict[str, CallbackLine]:
    """The service's line per callback, by MsgId."""
    lines = {}
    for match in CALLBACK_LINE.finditer(output):
        pid, msg_id, outcome, ms = match.groups()
        lines[msg_id] = CallbackLine(int(pid), outcome, float(ms) / 1000)
    return lines


def warning_counts(output: str) -> Counter[str]:
    """WARNING lines of a server log, counted by their text with the digits blanked."""
    counts: Counter[str] = Counter()
    for line in output.splitlines():
        at = line.find("WARNING")
        if at >= 0:
            counts["".join("#" if ch.isdigit() else ch for ch in line[at:])[:150]] += 1
    return counts


def read_store(store: Path, sql: str) -> list[tuple]:
    """Rows of a read-only query (WAL: it never blocks the workers' writes); [] on errors."""
    if not store.exists():
        return []
    uri = f"file:{store.resolve()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=2)) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


def active_jobs(store: Path) -> int | None:
    """Jobs still running, deferred or in the outbox; None when the store cannot be read."""
    marks = ",".join(f"'{state}'" for state in ACTIVE_STATES)
    rows = read_store(store, f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})")
    return int(rows[0][0]) if rows else None


def jobs_by_owner_pid(store: Path) -> dict[int, int]:
    """Jobs per owner process: an owner id is ``host:pid:random`` (app/jobs/leases.py)."""
    counts: Counter[int] = Counter()
    for owner, count in read_store(store, "SELECT owner, COUNT(*) FROM jobs GROUP BY owner"):
        parts = str(owner or "").split(":")
        if len(parts) >= 2 and parts[1].isdigit():
            counts[int(parts[1])] += int(count)
    return dict(counts)


def wait_for_workers(server: Server, workers: int, store: Path, timeout: float = 30.0) -> list[int]:
    """The worker pids once ``workers`` of them have opened the store (their app is built and
    they are about to accept), so that none misses a burst while it boots; bounded."""
    give_up = time.monotonic() + timeout
    while True:
        pids = server.workers
        ready = [pid for pid in pids if _has_open(pid, store)]
        if len(ready) >= workers or time.monotonic() >= give_up:
            return sorted(ready or pids)
        time.sleep(0.1)


def _has_open(pid: int, path: Path) -> bool:
    target = str(path.resolve())
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(entry) == target:
                    return True
    return False


def cpu_usage(server: Server, others: list[int]) -> dict[str, float]:
    """CPU seconds so far: the wall clock, the service, this process (the generator), the
    processes ``others`` (the fake), and every CPU of the machine busy."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": time.monotonic(),
        "service": server.cpu_seconds(),
        "generator": own.ru_utime + own.ru_stime,
        "fake": cpu_seconds(others),
        "machine": sum(cpu_busy_seconds(cpu) for cpu in range(os.cpu_count() or 1)),
    }
