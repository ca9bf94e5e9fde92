"""What only SqliteStore has: the file, its schema, indexes, locking and fork handling."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from app.infra.store import JobState, SqliteStore, StoreBusy
from app.infra.store.sqlite import SCHEMA_VERSION

T = 1_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    opened.close()


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    SqliteStore(path).close()
    assert path.is_file()


def test_wal_mode_and_schema_version(store: SqliteStore, db: Path) -> None:
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    assert query(db, "SELECT id, version FROM schema_version") == [(1, SCHEMA_VERSION)]


def test_sqlite_itself_never_waits_for_a_lock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout=2.5)
    try:
        with store._locked() as conn:  # the store waits itself, yielding (see test_sqlite_busy)
            assert conn.execute("PRAGMA busy_timeout").fetchone() == (0,)
            assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    finally:
        store.close()


def test_reopen_is_idempotent_and_keeps_data(db: Path) -> None:
    first = SqliteStore(db)
    first.claim_job("m1", "app", "{}", "w1", T + 30, T)
    first.set_value("token", "abc", T + 100)
    first.acquire_lock("refresh", "w1", T + 10, T)
    first.close()
    second = SqliteStore(db)
    third = SqliteStore(db)  # two open at once, as in two workers
    try:
        assert second.get_job("m1") is not None
        assert third.get_value("token", T) == "abc"
        assert not third.acquire_lock("refresh", "w2", T + 10, T + 1)
    finally:
        second.close()
        third.close()
    assert query(db, "SELECT count(*) FROM schema_version") == [(1,)]


def test_refuses_an_unknown_schema_version(db: Path) -> None:
    SqliteStore(db).close()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="schema version 2"):
        SqliteStore(db)


def test_refuses_a_file_that_is_not_a_database(db: Path) -> None:
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        SqliteStore(db)


def test_closed_store_refuses_work(store: SqliteStore) -> None:
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.get_job("m1")


def test_waits_for_another_writer_then_gives_up(db: Path) -> None:
    store = SqliteStore(db, busy_timeout=0.2)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreBusy, match="locked"):
            store.claim_job("m1", "app", "{}", "w1", T + 30, T)
        assert time.monotonic() - started >= 0.15
        assert store.get_job("m1") is None  # reads still work under WAL
        other.execute("COMMIT")
        created, _ = store.claim_job("m1", "app", "{}", "w1", T + 30, T)  # usable afterwards
        assert created
    finally:
        other.close()
        store.close()


def test_failed_statement_rolls_back_the_transaction(store: SqliteStore) -> None:
    with pytest.raises(sqlite3.IntegrityError), store._transaction() as conn:
        conn.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
        conn.execute("INSERT INTO kv (key, value) VALUES ('b', NULL)")
    assert store.get_value("a", T) is None
    store.set_value("a", "2")  # no transaction left open
    assert store.get_value("a", T) == "2"


def _plans(store: SqliteStore, db: Path, run: object) -> dict[str, str]:
    """The query plan of every statement ``run()`` sends, keyed by statement."""
    statements: list[str] = []
    with store._locked() as conn:
        conn.set_trace_callback(statements.append)
    try:
        run()  # type: ignore[operator]
    finally:
        with store._locked() as conn:
            conn.set_trace_callback(None)
    plans = {}
    for sql in statements:
        if sql.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE")):
            rows = query(db, "EXPLAIN QUERY PLAN " + sql)
            plans[" ".join(sql.split())] = " | ".join(str(row[-1]) for row in rows)
    return plans


def test_indexes_serve_claim_expired_list_and_purge(store: SqliteStore, db: Path) -> None:
    for i in range(50):
        store.claim_job(f"k{i}", "app", "{}", "w1", T + i, T)
        if i % 2:
            store.update_job(f"k{i}", expect_states=(JobState.RUNNING,), state=JobState.DONE, now=T)

    def run() -> None:
        store.claim_expired("w2", T + 100, T + 200, 5)
        store.list_jobs(JobState.DEAD)
        store.purge_jobs(T - 1)

    plans = _plans(store, db, run)
    due = next(p for s, p in plans.items() if s.startswith("SELECT") and "lease_until <" in s)
    listed = next(p for s, p in plans.items() if s.startswith("SELECT") and "state = 'dead'" in s)
    purged = next(p for s, p in plans.items() if s.startswith("DELETE"))
    assert "jobs_due" in due
    assert "TEMP B-TREE" not in due
    assert "jobs_state_updated" in listed
    assert "jobs_state_updated" in purged


def _use_inherited_store(store: SqliteStore, results: Queue[object]) -> None:
    created, job = store.claim_job("child", "app", "{}", "child", T + 30, T)
    results.put((created, job.owner, store.get_job("parent") is not None))
    store.close()


def test_connection_is_not_reused_across_fork(store: SqliteStore) -> None:
    store.claim_job("parent", "app", "{}", "parent", T + 30, T)  # the connection is open now
    ctx = multiprocessing.get_context("fork")
    results: Queue[object] = ctx.Queue()
    child = ctx.Process(target=_use_inherited_store, args=(store, results))
    child.start()
    try:
        assert results.get(timeout=30) == (True, "child", True)
    finally:
        child.join(timeout=30)
    assert child.exitcode == 0
    assert store.get_job("child") is not None  # the parent's connection still works
    created, _ = store.claim_job("after", "app", "{}", "parent", T + 30, T)
    assert created
