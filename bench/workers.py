"""What a burst asks of the processes: open-file limits, and each worker's resident memory.

A burst of 1,000 callbacks holds 1,000 sockets in the load generator, and up to 1,000 accepted
sockets plus as many to the API in a worker that takes most of them: more than the usual soft
limit of 1,024 open files. :func:`raise_open_files` lifts this process's soft limit towards the
hard one; servers started afterwards inherit it.
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterable
from pathlib import Path

from .common import rss_bytes


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``wanted`` (at most the hard limit) when it is
    lower; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def open_files_limit(pid: int) -> int | None:
    """The soft open-files limit of process ``pid`` (from /proc), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                value = line.split()[3]
                return -1 if value == "unlimited" else int(value)
    except (OSError, IndexError, ValueError):
        pass
    return None


def open_files(pid: int) -> int:
    """How many file descriptors process ``pid`` holds now (0 when it is gone)."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0


class ProcessWatch:
    """Reads the RSS of some processes every ``interval`` seconds in a thread (their open
    descriptors every fifth time: listing thousands costs more), and keeps the first reading and
    the peak of each, until :meth:`stop`."""

    def __init__(self, pids: Iterable[int], interval: float = 0.02) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.rss_before = {pid: rss_bytes(pid) for pid in self.pids}
        self.rss_peak = dict(self.rss_before)
        self.fds_peak = {pid: open_files(pid) for pid in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            for pid in self.pids:
                self.rss_peak[pid] = max(self.rss_peak[pid], rss_bytes(pid))
                if tick % 5 == 0:
                    self.fds_peak[pid] = max(self.fds_peak[pid], open_files(pid))

    def start(self) -> ProcessWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
