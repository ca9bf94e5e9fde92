"""Group commit scenarios, each run by test_sqlite_group_commit in its own gevent-patched process.

``python -c "<patch>; from tests.store._group_commit_scenarios import main; main()" NAME DB``
runs scenario NAME on a new SQLite file DB and prints ``ok``; a failed check raises (exit code 1,
the traceback on stderr). Greenlets spawned together are ready in the same turn of the event
loop, so the first one's write leads and the others join its batch: how many transactions they
take is counted from the statements the store's connection really ran.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gevent

from app.infra.store import JobState, SqliteStore, StoreBusy, patience
from app.infra.store.sqlite_batch import MAX_BATCH

T = 1_000_000.0
LIMIT = 30.0  # seconds any join waits


@contextmanager
def traced(store: SqliteStore) -> Iterator[list[str]]:
    """Every statement the store's connection runs inside the block."""
    statements: list[str] = []
    with store._locked() as conn:
        conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        with store._locked() as conn:
            conn.set_trace_callback(None)


def commits(statements: list[str]) -> int:
    return sum(1 for sql in statements if sql.strip().upper() == "COMMIT")


def claim(store: SqliteStore, key: str, owner: str) -> tuple[bool, str | None]:
    created, job = store.claim_job(key, "app", f'{{"by": "{owner}"}}', owner, T + 60, T)
    return created, job.owner


def outcome(greenlet: gevent.Greenlet) -> Any:
    """The greenlet's result, or the exception it ended with."""
    return greenlet.value if greenlet.successful() else greenlet.exception


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    greenlets = [gevent.spawn(call) for call in calls]
    gevent.joinall(greenlets, timeout=LIMIT)
    assert all(g.dead for g in greenlets), "greenlets still running"
    return [outcome(g) for g in greenlets]


def concurrent_writes_share_transactions(store: SqliteStore) -> None:
    """40 claims (20 keys, each claimed twice), then 20 updates and 20 set_value: each wave
    commits in fewer transactions than it has writes, and every write means what it did alone."""
    keys = [f"k{i}" for i in range(20)]
    with traced(store) as statements:
        claims = run_together(
            [lambda key=key, n=n: claim(store, key, f"g{n}") for n in range(2) for key in keys]
        )
    claim_commits = commits(statements)
    assert claim_commits < len(claims), claim_commits
    for key, first, second in zip(keys, claims[:20], claims[20:], strict=True):
        assert first == (True, "g0"), (key, first)  # the first claim of a key creates it...
        assert second == (False, "g0"), (key, second)  # ...the second, in its batch, sees it

    def finish(key: str) -> bool:
        return store.update_job(
            key,
            expect_states=(JobState.RUNNING,),
            expect_owner="g0",
            state=JobState.PASSIVE,
            reply="r",
            now=T + 1,
        )

    with traced(store) as statements:
        results = run_together(
            [lambda key=key: finish(key) for key in keys]
            + [lambda key=key: store.set_value(key, "v") for key in keys]
        )
    assert results == [True] * 20 + [None] * 20, results
    assert commits(statements) < len(results), commits(statements)
    for key in keys:
        job = store.get_job(key)
        assert job is not None and (job.state, job.reply) == (JobState.PASSIVE, "r"), job
        assert store.get_value(key, T) == "v"
    print(f"claims: {len(claims)} writes in {claim_commits} transactions", file=sys.stderr)

    with traced(store) as statements:  # more writes than one transaction takes
        many = run_together([lambda n=n: store.set_value(f"m{n}", "v") for n in range(600)])
    assert many == [None] * 600
    assert 600 / MAX_BATCH <= commits(statements) < 600, commits(statements)


class Refused(Exception):
    pass


def a_failing_write_loses_only_itself(store: SqliteStore) -> None:
    """In one batch: ten claims, a set_value that breaks a NOT NULL constraint, and a write
    that inserts a row and then raises. The two callers get their errors, the partial write is
    rolled back to its savepoint, the claims commit."""

    def insert_then_refuse(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO kv (key, value) VALUES ('half', 'written')")
        raise Refused("second thoughts")

    calls: list[Callable[[], Any]] = [lambda n=n: claim(store, f"c{n}", "w") for n in range(5)]
    calls.append(lambda: store.set_value("broken", None))  # type: ignore[arg-type]
    calls.append(lambda: store._write(insert_then_refuse))
    # One statement, no savepoint: its first row is in before its second breaks NOT NULL, and
    # SQLite's own statement rollback must take that row out again.
    two_rows = "INSERT INTO kv (key, value) VALUES ('first', 'a'), ('second', NULL)"
    calls.append(lambda: store._write(lambda conn: conn.execute(two_rows), one_statement=True))
    calls += [lambda n=n: claim(store, f"c{n}", "w") for n in range(5, 10)]
    with traced(store) as statements:
        results = run_together(calls)
    assert commits(statements) == 1, statements  # all thirteen shared one transaction
    # Savepoints only around the two writes that may change rows and still fail afterwards.
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 2, statements
    assert isinstance(results[5], sqlite3.IntegrityError), results[5]
    assert isinstance(results[6], Refused), results[6]
    assert isinstance(results[7], sqlite3.IntegrityError), results[7]
    assert store.get_value("first", T) is None
    assert results[:5] + results[8:] == [(True, "w")] * 10, results
    assert all(store.get_job(f"c{n}") is not None for n in range(10))
    assert store.get_value("broken", T) is None
    assert store.get_value("half", T) is None


def a_failed_commit_fails_every_write(store: SqliteStore) -> None:
    """A deferred foreign key is checked at COMMIT: one write breaking it makes the COMMIT of
    its batch fail. Every caller of the batch gets the error; nothing of it is written."""
    setup = sqlite3.connect(store.path, isolation_level=None)
    setup.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
    setup.execute(
        "CREATE TABLE children (parent INTEGER REFERENCES parents (id) "
        "DEFERRABLE INITIALLY DEFERRED)"
    )
    setup.close()
    with store._locked() as conn:
        conn.execute("PRAGMA foreign_keys = ON")

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO children (parent) VALUES (42)")  # no parent 42: fails at COMMIT

    calls: list[Callable[[], Any]] = [lambda n=n: claim(store, f"c{n}", "w") for n in range(6)]
    calls.insert(3, lambda: store._write(orphan))
    with traced(store) as statements:
        results = run_together(calls)
    assert commits(statements) == 1, statements
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert "FOREIGN KEY" in str(results[0]), results[0]
    assert all(store.get_job(f"c{n}") is None for n in range(6))
    assert store._read("SELECT COUNT(*) FROM children", ())[0][0] == 0
    assert claim(store, "after", "w") == (True, "w")  # no transaction left open


def a_transaction_sqlite_rolled_back_fails_the_writes_before(store: SqliteStore) -> None:
    """SQLite itself may roll a whole transaction back when a statement fails (a full disk, an
    I/O error); a write that ends the transaction and raises stands in for that here. The writes
    before it in the batch are lost with the transaction, so their callers get the error; the
    writes after it run in a new transaction and commit."""

    def end_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise Refused("the transaction is gone")

    calls: list[Callable[[], Any]] = [lambda n=n: claim(store, f"c{n}", "w") for n in range(6)]
    calls.insert(3, lambda: store._write(end_transaction))
    with traced(store) as statements:
        results = run_together(calls)
    assert all(isinstance(r, Refused) for r in results[:4]), results
    assert results[4:] == [(True, "w")] * 3, results
    assert commits(statements) == 1, statements
    assert [store.get_job(f"c{n}") is not None for n in range(6)] == [False] * 3 + [True] * 3


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def another_process_delays_the_batch(store: SqliteStore) -> None:
    """Another process holds the write lock. The first writer (who leads) and a later one have
    little patience: both get StoreBusy and their writes never happen. The leader after them is
    killed while it waits: the lead passes on. The others wait, and commit once the lock is
    free, together."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"

        def impatient(key: str, seconds: float) -> tuple[bool, str | None]:
            with patience(seconds):
                return claim(store, key, "w")

        first = gevent.spawn(impatient, "impatient-leader", 0.05)
        killed = gevent.spawn(claim, store, "killed", "w")
        patient = [gevent.spawn(claim, store, f"p{n}", "w") for n in range(8)]
        later = gevent.spawn(impatient, "impatient-follower", 0.1)
        gevent.joinall([first, later], timeout=LIMIT)
        assert isinstance(first.exception, StoreBusy), outcome(first)
        assert isinstance(later.exception, StoreBusy), outcome(later)
        assert not killed.dead and not any(g.dead for g in patient)
        killed.kill(timeout=LIMIT)  # it leads now, waiting for the lock
        gevent.sleep(0.05)  # whoever leads now goes on polling the lock meanwhile
        assert not any(g.dead for g in patient)
        with traced(store) as statements:
            holder.stdin.write("\n")
            holder.stdin.flush()
            gevent.joinall(patient, timeout=LIMIT)
        assert [outcome(g) for g in patient] == [(True, "w")] * 8
        assert commits(statements) == 1, statements
        for key in ("impatient-leader", "impatient-follower", "killed"):
            assert store.get_job(key) is None, key
        assert holder.wait(timeout=LIMIT) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def a_forked_child_batches_on_its_own(store: SqliteStore) -> None:
    """After fork the child leaves the parent's connection and batches alone; both go on."""
    import os

    assert claim(store, "parent", "parent") == (True, "parent")
    pid = os.fork()
    if pid == 0:
        try:
            ok = run_together([lambda n=n: claim(store, f"child{n}", "child") for n in range(5)])
            os._exit(0 if ok == [(True, "child")] * 5 else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + LIMIT
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        assert time.monotonic() < deadline, "child still running"
        gevent.sleep(0.01)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert all(store.get_job(f"child{n}") is not None for n in range(5))
    assert run_together([lambda: claim(store, "after", "parent")]) == [(True, "parent")]


SCENARIOS: dict[str, Callable[[SqliteStore], None]] = {
    f.__name__: f
    for f in (
        concurrent_writes_share_transactions,
        a_failing_write_loses_only_itself,
        a_failed_commit_fails_every_write,
        a_transaction_sqlite_rolled_back_fails_the_writes_before,
        another_process_delays_the_batch,
        a_forked_child_batches_on_its_own,
    )
}


def main() -> None:
    from gevent import monkey

    assert monkey.is_module_patched("threading"), "run me with gevent's monkey-patching"
    name, path = sys.argv[1], sys.argv[2]
    store = SqliteStore(path, busy_timeout=LIMIT)
    try:
        SCENARIOS[name](store)
    finally:
        store.close()
    print("ok")
