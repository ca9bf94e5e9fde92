"""This process's one connection to the SQLite store's file: WAL mode, a lock, fork safety.

* Within a process there is one connection, guarded by a lock, rather than one per
  thread/greenlet. Under the gevent worker all greenlets share one OS thread and a sqlite3 call
  never yields to the hub, so per-greenlet connections would buy no parallelism; they would cost a
  connection (open, pragmas) per request greenlet. Real threads (a sync worker, handler
  threads) share it the same way. The lock is held for one short transaction; nothing inside it
  switches greenlets (opening the connection, which may sleep, happens outside it), so even a
  lock created before monkey-patching is safe.
* A connection never crosses ``fork()`` (gunicorn ``--preload``): a process that finds a
  connection opened by its parent opens its own and leaves the inherited one alone, as SQLite
  requires.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Connections inherited through fork(): never used or closed in the child, only kept from the
# garbage collector, whose close could disturb the parent's locks.
_INHERITED: list[sqlite3.Connection] = []


class SqliteConnection:
    """The connection to the file at ``path`` (created with its directories if missing).

    ``setup`` runs in the first transaction (the schema). ``busy_timeout`` is how many seconds an
    operation waits for another process's write before it raises
    :class:`sqlite3.OperationalError` ("database is locked").
    """

    def __init__(
        self, path: Path, busy_timeout: float, setup: Callable[[sqlite3.Connection], None]
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.transaction() as conn:
                setup(conn)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """This process's connection, held exclusively for the duration of the block."""
        self._leave_parent_connection()
        if self._conn is None and not self._closed:
            # Opened outside the lock: opening may sleep (see _enter_wal), and a sleep that
            # yields to gevent must not happen while a greenlet holds the lock.
            fresh: sqlite3.Connection | None = self._connect()
            with self._lock:
                if self._conn is None and not self._closed:
                    self._conn, fresh = fresh, None
            if fresh is not None:
                fresh.close()  # another thread or greenlet was first
        with self._lock:
            if self._closed or self._conn is None:
                raise RuntimeError(f"SQLite store {self.path} is closed")
            yield self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction holding the database's write lock from its start."""
        with self.locked() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._leave_parent_connection()
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the sqlite3 module starts no transactions; we issue BEGIN/COMMIT.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # shared by threads/greenlets under self._lock
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = self._enter_wal(conn)
            if mode.lower() != "wal":
                raise RuntimeError(
                    f"SQLite store {self.path}: cannot use WAL mode (got {mode!r}); "
                    "is it on a network file system?"
                )
            # WAL + NORMAL: a commit survives a crash of the process, not necessarily of the host.
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> str:
        """Switch the file to WAL (a no-op once done) and return the journal mode.

        When several workers open a new file at once, the switch can fail with SQLITE_BUSY
        without SQLite calling its busy handler (it refuses to wait where waiting could
        deadlock), so retry it here, for as long as ``busy_timeout``.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return str(mode)
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)

    def _leave_parent_connection(self) -> None:
        """After a fork: the parent's lock may be held, and its connection must not be used."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn = None
            self._pid = os.getpid()
