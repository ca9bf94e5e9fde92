"""The SQLite store's file: created private, and watched for being deleted or replaced.

The file holds decrypted messages, so it is created mode 0600 (SQLite itself would follow the
umask, usually 0644); SQLite gives its ``-wal`` and ``-shm`` files the same mode.

A process keeps its connection to the file it opened. If someone deletes the file, or moves
another one in its place, that process would go on writing to the old inode while a newly started
worker opens a new file: two stores, and a retry may run its handler again. :class:`FileWatch`
checks the file's identity (device and inode) at most once a second, so every worker notices
within about a second and reopens the file at the path; they all meet on the same new file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
#: How long /healthz reports a deleted or replaced file after it was noticed.
REPORT_SECONDS = 3600.0

Identity = tuple[int, int]


def identity(path: Path) -> Identity | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def create_private(path: Path) -> None:
    """Create the database file, mode 0600, unless it exists.

    A ``-wal`` or ``-shm`` file without its database is what a deletion leaves behind; a new
    database must not pick up the old one's log, so they go first.
    """
    if path.exists():
        return
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class FileWatch:
    """Has the file at ``path`` changed since this process opened it?"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: Identity | None = None
        self._next_check = 0.0
        #: (wall time, what happened) of the last deletion or replacement noticed.
        self.last_event: tuple[float, str] | None = None

    def opened_now(self) -> None:
        self.opened = identity(self.path)
        self._next_check = time.monotonic() + CHECK_SECONDS

    def changed(self) -> bool:
        """True (once, with an error logged) when the file was deleted or replaced since it was
        opened; checked at most once every CHECK_SECONDS."""
        now = time.monotonic()
        if self.opened is None or now < self._next_check:
            return False
        self._next_check = now + CHECK_SECONDS
        current = identity(self.path)
        if current == self.opened:
            return False
        what = "deleted" if current is None else "replaced by another file"
        log.error(
            "SQLite store %s was %s while in use; reopening it at its path (records kept in "
            "the old file are lost to this store)",
            self.path,
            what,
        )
        self.last_event = (time.time(), what)
        self.opened = None
        return True

    def report(self) -> dict[str, str]:
        """For /healthz: the last deletion or replacement, for an hour after it was noticed."""
        if self.last_event is None or time.time() - self.last_event[0] > REPORT_SECONDS:
            return {}
        when, what = self.last_event
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        return {"store_file": f"{what} at {stamp}, reopened"}
