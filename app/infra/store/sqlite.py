"""The store on one SQLite file in WAL mode, shared by the gunicorn workers of one host.

Concurrency design:

* Across processes, SQLite's own file locking does the work. Every write runs in a short
  ``BEGIN IMMEDIATE`` transaction: it takes the database's single write lock before reading, so a
  read-then-write (the claim of expired jobs, the existing-job lookup of a claim) sees the latest
  data and no other process can write in between. Under gevent, the short writes greenlets make
  at the same moment share one transaction, each in its own savepoint (group commit,
  :mod:`.sqlite_batch`); elsewhere each write has its own. A process that finds the lock taken
  waits for it in short sleeps (:mod:`.waiting`), never inside SQLite: SQLite's own
  ``busy_timeout`` would block the whole gevent worker, every request and ``/healthz`` with it,
  for as long as another process holds the lock. No transaction is ever held across a handler
  call.
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

* The file is created mode 0600, and a file deleted or replaced under a running process is
  noticed within about a second and reopened at its path (:mod:`.sqlite_file`).

The module is over 350 lines: the connection's life (WAL, the non-blocking lock wait, fork and
file checks) and the statements share the one lock and connection, and split apart each would
reach into the other's internals.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..greenlets import gevent_patched
from .base import UNSET, Job, JobState, Store, Unset
from .sqlite_file import FileWatch, create_private
from .sqlite_schema import (
    ACTIVE_SQL,
    BATCH,
    JOB_COLUMNS,
    PURGEABLE_SQL,
    SCHEMA,
    SCHEMA_VERSION,
    chunks,
    job_from_row,
    marks,
)
from .waiting import StoreBusy, Waiter, patience

if TYPE_CHECKING:
    from .sqlite_batch import GroupCommit

T = TypeVar("T")

HEALTH_WAIT = 0.25  # seconds health() waits for the write lock before it says "busy"

# Connections inherited through fork(): never used or closed in the child, only kept from the
# garbage collector, whose close could disturb the parent's locks.
_INHERITED: list[sqlite3.Connection] = []


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY (another connection holds the lock), whatever its extended code."""
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


class SqliteStore(Store):
    """A :class:`Store` on the SQLite file at ``path``, created with its directories if missing.

    ``busy_timeout`` is how many seconds an operation waits, at most, for another process's
    write before it raises :class:`~.waiting.StoreBusy` (:func:`~.waiting.patience` shortens it).
    ``group_commit=False`` gives every write its own transaction under gevent too (the bench).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0, group_commit: bool = True
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._group_commit = group_commit
        self._group: GroupCommit | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._file = FileWatch(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._locked():  # opens the file and creates the schema
                pass
        except BaseException:
            self.close()
            raise

    # -- connection handling ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        create_private(self.path)
        # isolation_level=None: the sqlite3 module starts no transactions; we issue BEGIN/COMMIT.
        # timeout=0: SQLite never waits for a lock itself (it would block the event loop).
        conn = sqlite3.connect(
            self.path,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,  # shared by threads/greenlets under self._lock
        )
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            self._file.opened_now()
            mode = self._enter_wal(conn)
            if mode.lower() != "wal":
                raise RuntimeError(
                    f"SQLite store {self.path}: cannot use WAL mode (got {mode!r}); "
                    "is it on a network file system?"
                )
            # WAL + NORMAL: a commit survives a crash of the process, not necessarily of the host.
            conn.execute("PRAGMA synchronous = NORMAL")
            waiter = Waiter(self._busy_timeout, f"SQLite store {self.path}")
            while not self._begin(conn):
                waiter.pause()
            try:
                self._create_schema(conn)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
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
        waiter = Waiter(self._busy_timeout, f"SQLite store {self.path}")
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return str(mode)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
            waiter.pause()

    @staticmethod
    def _begin(conn: sqlite3.Connection) -> bool:
        """Start a write transaction; False when another process holds the write lock."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return False
            raise
        return True

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        for statement in SCHEMA:
            conn.execute(statement)
        row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, ?)", (SCHEMA_VERSION,)
            )
        elif row[0] != SCHEMA_VERSION:
            # Later versions add their migrations here, keyed on the stored version.
            raise RuntimeError(
                f"SQLite store {self.path} has schema version {row[0]}, "
                f"this code knows version {SCHEMA_VERSION}"
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """This process's connection, held exclusively for the duration of the block."""
        self._leave_parent_connection()
        if self._file.changed():  # deleted or replaced: drop the old inode, reopen the path
            with self._lock:
                stale, self._conn = self._conn, None
            if stale is not None:
                stale.close()
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
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction holding the database's write lock from its start.

        While another process holds that lock, wait in short sleeps outside this process's own
        lock (other greenlets and threads go on), at most ``busy_timeout`` or the caller's
        :func:`~.waiting.patience`; then StoreBusy."""
        waiter: Waiter | None = None
        while True:
            with self._locked() as conn:
                if self._begin(conn):
                    try:
                        yield conn
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            with contextlib.suppress(sqlite3.Error):
                                conn.execute("ROLLBACK")
                        raise
                    return
            waiter = waiter or Waiter(self._busy_timeout, f"SQLite store {self.path}")
            waiter.pause()

    def _write(
        self, operation: Callable[[sqlite3.Connection], T], *, one_statement: bool = False
    ) -> T:
        """``operation(conn)`` in a write transaction: under gevent one it may share with the
        other greenlets' writes (:mod:`.sqlite_batch`), else its own. ``one_statement``: the
        operation changes rows in one statement and nothing after it can fail, so a shared
        transaction needs no savepoint around it (see :meth:`GroupCommit.run`)."""
        self._leave_parent_connection()  # a child process starts its own batches
        if self._group is not None or (self._group_commit and gevent_patched()):
            if self._group is None:
                from .sqlite_batch import GroupCommit  # imports gevent: only where it runs

                self._group = GroupCommit(
                    self._locked, self._begin, self._busy_timeout, f"SQLite store {self.path}"
                )
            return self._group.run(operation, one_statement=one_statement)
        with self._transaction() as conn:
            return operation(conn)

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        """Rows of one read. In WAL mode a read rarely meets a lock (during recovery or a
        checkpoint of another process); then it waits like a write."""
        waiter: Waiter | None = None
        while True:
            with self._locked() as conn:
                try:
                    return conn.execute(sql, params).fetchall()
                except sqlite3.OperationalError as exc:
                    if not _busy(exc):
                        raise
            waiter = waiter or Waiter(self._busy_timeout, f"SQLite store {self.path}")
            waiter.pause()

    def health(self) -> dict[str, str]:
        """Whether a write can start within HEALTH_WAIT (ordinary contention between workers
        is far shorter), and a recent deletion or replacement of the file."""
        report = self._file.report()
        try:
            with patience(HEALTH_WAIT), self._transaction():
                pass
        except StoreBusy:
            report["store"] = "busy"
        else:
            report["store"] = "ok"
        return report

    def _leave_parent_connection(self) -> None:
        """After a fork: the parent's lock may be held, and its connection must not be used."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._group = None
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn = None
            self._pid = os.getpid()

    def close(self) -> None:
        self._leave_parent_connection()
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- jobs ---------------------------------------------------------------------------------
    def claim_job(
        self, key: str, kind: str, payload: str, owner: str, lease_until: float, now: float
    ) -> tuple[bool, Job]:
        def claim(conn: sqlite3.Connection) -> tuple[bool, Job]:
            rows = conn.execute(
                f"""INSERT INTO jobs (key, kind, payload, state, owner, lease_until,
                                      attempts, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
                    ON CONFLICT (key) DO NOTHING
                    RETURNING {JOB_COLUMNS}""",
                (key, kind, payload, JobState.RUNNING.value, owner, lease_until, now, now),
            ).fetchall()
            if rows:
                return True, job_from_row(rows[0])
            row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?", (key,)).fetchone()
            return False, job_from_row(row)

        return self._write(claim, one_statement=True)

    def get_job(self, key: str) -> Job | None:
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?", (key,))
        return job_from_row(rows[0]) if rows else None

    def update_job(
        self,
        key: str,
        *,
        expect_states: tuple[JobState, ...],
        expect_owner: str | None = None,
        state: JobState | None = None,
        owner: str | Unset | None = UNSET,
        lease_until: float | None = None,
        reply: str | Unset | None = UNSET,
        attempts: int | None = None,
        last_error: str | Unset | None = UNSET,
        now: float,
    ) -> bool:
        if not expect_states:
            return False
        changes: dict[str, object] = {}
        if state is not None:
            changes["state"] = JobState(state).value
        if owner is not UNSET:
            changes["owner"] = owner
        if lease_until is not None:
            changes["lease_until"] = lease_until
        if reply is not UNSET:
            changes["reply"] = reply
        if attempts is not None:
            changes["attempts"] = attempts
        if last_error is not UNSET:
            changes["last_error"] = last_error
        changes["updated_at"] = now
        # Column names come from the fixed set above, never from the caller.
        assignments = ", ".join(f"{column} = ?" for column in changes)
        sql = (
            f"UPDATE jobs SET {assignments} "
            f"WHERE key = ? AND state IN ({marks(len(expect_states))})"
        )
        params: list[object] = [*changes.values(), key, *(JobState(s).value for s in expect_states)]
        if expect_owner is not None:
            sql += " AND owner = ?"
            params.append(expect_owner)
        return self._write(lambda conn: conn.execute(sql, params).rowcount == 1, one_statement=True)

    def renew_leases(self, owner: str, keys: list[str], lease_until: float) -> int:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return 0

        def renew(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute(
                    f"""UPDATE jobs SET lease_until = ?
                        WHERE owner = ? AND state IN {ACTIVE_SQL}
                          AND key IN ({marks(len(chunk))})""",
                    (lease_until, owner, *chunk),
                ).rowcount
                for chunk in chunks(unique)
            )

        return self._write(renew)

    def claim_expired(self, owner: str, now: float, lease_until: float, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        with self._transaction() as conn:
            # Inside BEGIN IMMEDIATE: no other process can write between this read and the update.
            # INDEXED BY: without statistics the planner would rather take jobs_state_updated
            # and sort every due job; jobs_due yields them in order and stops at ``limit``.
            rows = conn.execute(
                f"""SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_due
                    WHERE state IN {ACTIVE_SQL} AND lease_until < ?
                    ORDER BY lease_until, key
                    LIMIT ?""",
                (now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE jobs SET owner = ?, lease_until = ?, updated_at = ? WHERE key = ?",
                [(owner, lease_until, now, row[0]) for row in rows],
            )
        claimed = []
        for row in rows:
            job = job_from_row(row)
            job.owner, job.lease_until, job.updated_at = owner, lease_until, now
            claimed.append(job)
        return claimed

    def release_leases(self, owner_prefix: str, now: float) -> int:
        if not owner_prefix:
            return 0
        with self._transaction() as conn:
            return conn.execute(
                f"""UPDATE jobs SET lease_until = ?
                    WHERE state IN {ACTIVE_SQL} AND lease_until > ?
                      AND substr(owner, 1, ?) = ?""",
                (now, now, len(owner_prefix), owner_prefix),
            ).rowcount

    def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]:
        if limit <= 0:
            return []
        rows = self._read(
            f"""SELECT {JOB_COLUMNS} FROM jobs WHERE state = ?
                ORDER BY updated_at, key LIMIT ?""",
            (JobState(state).value, limit),
        )
        return [job_from_row(row) for row in rows]

    def count_jobs(self, state: JobState, limit: int = 10_000) -> int:
        """Counted on the (state, updated_at) index, without loading the jobs (observability)."""
        rows = self._read(
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = ? LIMIT ?)",
            (JobState(state).value, max(limit, 0)),
        )
        return int(rows[0][0])

    def purge_jobs(self, finished_before: float) -> int:
        """Delete in batches, each its own transaction, so a large purge never blocks writers."""
        purged = 0
        while True:
            with self._transaction() as conn:
                deleted = conn.execute(
                    f"""DELETE FROM jobs WHERE rowid IN (
                            SELECT rowid FROM jobs
                            WHERE state IN {PURGEABLE_SQL} AND updated_at < ?
                            LIMIT ?)""",
                    (finished_before, BATCH),
                ).rowcount
            purged += deleted
            if deleted < BATCH:
                return purged

    # -- values -------------------------------------------------------------------------------
    def get_value(self, key: str, now: float) -> str | None:
        rows = self._read(
            "SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
            (key, now),
        )
        return rows[0][0] if rows else None

    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None:
        sql = """INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (key) DO UPDATE
                 SET value = excluded.value, expires_at = excluded.expires_at"""
        self._write(lambda conn: conn.execute(sql, (key, value, expires_at)).rowcount)

    def delete_value(self, key: str, if_value: str | None = None) -> bool:
        if if_value is None:
            sql, params = "DELETE FROM kv WHERE key = ?", (key,)
        else:
            sql, params = "DELETE FROM kv WHERE key = ? AND value = ?", (key, if_value)
        return self._write(lambda conn: conn.execute(sql, params).rowcount == 1)

    def set_value_if_locked(
        self, key: str, value: str, lock_name: str, owner: str, now: float
    ) -> bool:
        def set_if_held(conn: sqlite3.Connection) -> bool:  # under the write lock: check, write
            held = conn.execute(
                "SELECT 1 FROM locks WHERE name = ? AND owner = ? AND until > ?",
                (lock_name, owner, now),
            ).fetchone()
            if held is None:
                return False
            conn.execute(
                """INSERT INTO kv (key, value, expires_at) VALUES (?, ?, NULL)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = NULL""",
                (key, value),
            )
            return True

        return self._write(set_if_held)

    # -- locks --------------------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool:
        sql = """INSERT INTO locks (name, owner, until) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE
                 SET owner = excluded.owner, until = excluded.until
                 WHERE locks.owner = excluded.owner OR locks.until <= ?
                 RETURNING 1"""
        params = (name, owner, until, now)
        return self._write(lambda conn: bool(conn.execute(sql, params).fetchall()))

    def release_lock(self, name: str, owner: str) -> bool:
        sql = "DELETE FROM locks WHERE name = ? AND owner = ?"
        return self._write(lambda conn: conn.execute(sql, (name, owner)).rowcount == 1)
