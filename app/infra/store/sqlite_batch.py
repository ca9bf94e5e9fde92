"""Group commit: under gevent, the concurrent writes of one process share one SQLite transaction.

A write transaction costs far more than the statement inside it (taking the write lock, the WAL
append, the commit), and a gevent worker has many callbacks writing at once. So the writes that
are ready together run in one ``BEGIN IMMEDIATE … COMMIT``:

* The first writer while no batch is open leads. It waits until the event loop has nothing
  else to run (``gevent.idle()``), at most :data:`GATHER_SECONDS`, so that the greenlets that
  are ready add their writes too; then, under the store's process lock and without yielding, it
  starts the transaction, runs up to :data:`MAX_BATCH` pending writes and commits. The others
  wait on an event. Writes beyond the cap, and those that come once the batch has run, go into
  the next batch; when they are already waiting, the oldest leads it without another wait.
  (One ``gevent.sleep(0)`` instead gathered about two writes a batch under load: most
  greenlets become ready only after it; see bench/README.md.)
* Each write runs inside its own SAVEPOINT: one that raises is rolled back to it, and its caller
  gets the exception; the others commit. A COMMIT that fails fails every write of its batch.
  No caller returns before the COMMIT holding its write succeeded (durability as before).
* While another process holds the write lock, the leader waits in short sleeps outside the
  process lock. Each write keeps its own patience (:func:`~.waiting.patience`): at every failed
  attempt the writes whose time ran out get StoreBusy; if the leader's own did, the next pending
  write leads on. A leader that is killed or times out while it waits hands on the lead too.

All callers must be greenlets of the hub's thread, as in gevent's worker (the store takes this
path only where gevent patched ``threading``, so that its threads are greenlets): between two
yields nobody else touches the queue, so a write is either pending or finished whenever another
greenlet looks.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

import gevent
from gevent.event import Event

from .waiting import FIRST_PAUSE, LONGEST_PAUSE, gave_up, wait_deadline

T = TypeVar("T")
MAX_BATCH = 256  # writes per transaction: keeps each transaction (and the lock hold) short
#: How long the first write of a batch waits, at most, for the event loop to run out of other
#: work, so that the greenlets that are ready add their writes (measured in bench/README.md).
GATHER_SECONDS = 0.01


class _Write:
    """One caller's write, waiting for the transaction that carries it."""

    __slots__ = ("deadline", "error", "finished", "result", "run", "savepoint", "wake")

    def __init__(
        self, run: Callable[[sqlite3.Connection], Any], deadline: float, savepoint: bool = True
    ) -> None:
        self.run = run
        self.savepoint = savepoint
        self.deadline = deadline
        self.wake = Event()  # set when the write finished, or when its caller is to lead
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs writes for one store connection, batching those that arrive together.

    ``locked()`` yields the connection under the process lock (and reopens it after a fork or a
    replaced file); ``begin(conn)`` starts ``BEGIN IMMEDIATE``, False when another process holds
    the write lock. ``batches`` and ``writes`` count what ran, for the bench.
    """

    def __init__(
        self,
        locked: Callable[[], AbstractContextManager[sqlite3.Connection]],
        begin: Callable[[sqlite3.Connection], bool],
        busy_timeout: float,
        what: str,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._locked = locked
        self._begin = begin
        self._busy_timeout = busy_timeout
        self._what = what
        self._max_batch = max_batch
        self._pending: list[_Write] = []
        self._leader: _Write | None = None
        self.batches = 0
        self.writes = 0

    def run(
        self, operation: Callable[[sqlite3.Connection], T], *, one_statement: bool = False
    ) -> T:
        """``operation(conn)`` in a write transaction it may share; its result once committed.

        ``one_statement``: the operation changes rows with a single SQL statement and nothing
        after it can fail. SQLite undoes a failing statement by itself and leaves the rest of
        the transaction alone, so such a write needs no savepoint (two statements fewer; the
        whole-transaction failures, a full disk say, are handled as for any write)."""
        write = _Write(operation, wait_deadline(self._busy_timeout), savepoint=not one_statement)
        self._pending.append(write)
        opens_batch = self._leader is None
        if opens_batch:
            self._leader = write
        try:
            while not write.finished:
                if self._leader is write:
                    self._lead(write, gather=opens_batch)
                else:
                    write.wake.wait()
                    write.wake.clear()
        except BaseException:
            self._abandon(write)
            raise
        if write.error is not None:
            raise write.error
        return cast(T, write.result)

    def _lead(self, own: _Write, *, gather: bool) -> None:
        if gather:  # the first write while no batch was open: let the others join it
            with gevent.Timeout(GATHER_SECONDS, False):
                gevent.idle()
        pause = FIRST_PAUSE
        try:
            while not own.finished:
                if self._run_batch():
                    continue
                self._expire(time.monotonic())
                if own.finished or not self._pending:
                    break
                left = min(write.deadline for write in self._pending) - time.monotonic()
                gevent.sleep(max(min(pause, left), 0.0))
                pause = min(pause * 2, LONGEST_PAUSE)
        except Exception as exc:  # opening the file or BEGIN failed: this caller's error
            own.error, own.finished = exc, True
            if own in self._pending:
                self._pending.remove(own)
        self._hand_on()

    def _run_batch(self) -> bool:
        """One transaction over the oldest pending writes; False if the database is locked."""
        with self._locked() as conn:
            if not self._begin(conn):
                return False
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                settled = self._execute(conn, batch)
            except BaseException as exc:  # a SAVEPOINT, RELEASE or ROLLBACK of the batch failed
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                for write in batch:
                    write.error, write.result = write.error or exc, None
                self._settle(batch)
                if not isinstance(exc, Exception):
                    raise
                return True
        self._settle(settled)
        return True

    def _settle(self, writes: list[_Write]) -> None:
        self.batches += 1
        self.writes += len(writes)
        for write in writes:
            write.finished = True
            if write is not self._leader:
                write.wake.set()

    def _execute(self, conn: sqlite3.Connection, batch: list[_Write]) -> list[_Write]:
        """Each write in its savepoint, then COMMIT; the writes this transaction settled."""
        shared = len(batch) > 1  # a write alone has the transaction to itself: no savepoint
        for index, write in enumerate(batch):
            savepoint = shared and write.savepoint
            if savepoint:
                conn.execute("SAVEPOINT write")
            try:
                write.result = write.run(conn)
            except Exception as exc:
                write.error = exc
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (a full disk, an I/O error): the
                    # writes before this one are lost with it; those after it go again.
                    for lost in batch[:index]:
                        lost.error, lost.result = exc, None
                    self._pending[0:0] = batch[index + 1 :]
                    return batch[: index + 1]
                if not shared:
                    conn.execute("ROLLBACK")
                    return batch
                if savepoint:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                continue  # a single statement that failed has undone itself
            if savepoint:
                conn.execute("RELEASE write")
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:  # a deferred constraint, say: the transaction is still open
                conn.execute("ROLLBACK")
            for write in batch:
                write.error, write.result = write.error or exc, None
        return batch

    def _expire(self, now: float) -> None:
        """StoreBusy for the pending writes whose callers cannot wait any longer."""
        waiting = []
        for write in self._pending:
            if write.deadline > now:
                waiting.append(write)
                continue
            write.error, write.finished = gave_up(self._what), True
            if write is not self._leader:
                write.wake.set()
        self._pending[:] = waiting

    def _abandon(self, write: _Write) -> None:
        """Its caller stops waiting (killed, or a timeout): drop the write if it has not run."""
        if write in self._pending:
            self._pending.remove(write)
        if self._leader is write:
            self._hand_on()

    def _hand_on(self) -> None:
        """The oldest pending write's caller leads next, or nobody while none is pending."""
        self._leader = self._pending[0] if self._pending else None
        if self._leader is not None:
            self._leader.wake.set()
