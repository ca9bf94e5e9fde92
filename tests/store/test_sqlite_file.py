"""The SQLite file: created private, never waited on inside SQLite, and followed when it is
deleted or replaced under running processes."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.infra.store import JobState, SqliteStore, StoreBusy, patience
from app.infra.store.sqlite_file import identity
from tests.helpers import wait_for

T = 1_000_000.0


def test_file_is_created_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    try:
        store.claim_job("k", "app", "{}", "w", T, T)
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    finally:
        store.close()


@pytest.fixture
def two_workers(tmp_path: Path):
    path = tmp_path / "state.db"
    first, second = SqliteStore(path), SqliteStore(path)
    yield path, first, second
    first.close()
    second.close()


def test_a_deleted_file_is_noticed_and_every_process_meets_on_the_new_one(two_workers, caplog):
    path, first, second = two_workers
    first.claim_job("old", "app", "{}", "w1", T, T)
    assert second.get_job("old") is not None
    path.unlink()  # an operator's rm; the -wal and -shm stay behind
    with caplog.at_level(logging.ERROR, logger="app.infra.store.sqlite_file"):
        wait_for(lambda: first.get_job("old") is None, timeout=5)
        wait_for(lambda: second.get_job("old") is None, timeout=5)
    assert path.exists()
    first.claim_job("new", "app", "{}", "w1", T, T)
    assert second.get_job("new") is not None  # one store again, not two
    # The first to notice saw it deleted; the other may find the new file already there.
    assert caplog.text.count("while in use; reopening it") == 2
    assert "deleted at" in first.health()["store_file"]


def test_a_replaced_file_is_noticed_and_reopened_by_every_process(two_workers, tmp_path):
    """Replacing the file under running workers is no way to restore a backup (the old file's
    write-ahead log stays beside it: stop the service for that), but it must not go unnoticed:
    every worker logs it, reports it and reopens the file now at the path."""
    path, first, second = two_workers
    first.claim_job("old", "app", "{}", "w1", T, T)
    SqliteStore(tmp_path / "other.db").close()
    os.replace(tmp_path / "other.db", path)
    new_file = identity(path)
    for store in (first, second):
        wait_for(lambda store=store: store.get_job("x") is None and store._file.opened == new_file)
        assert "replaced by another file" in store.health()["store_file"]


def test_a_locked_store_is_reported_busy_and_refused_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path, busy_timeout=5.0)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert store.health()["store"] == "ok"
        other.execute("BEGIN IMMEDIATE")
        assert store.health()["store"] == "busy"
        with patience(0.0), pytest.raises(StoreBusy):
            store.claim_job("k", "app", "{}", "w", T, T)
        assert store.get_job("k") is None  # reads go on under WAL
        other.execute("COMMIT")
        assert store.claim_job("k", "app", "{}", "w", T, T)[1].state == JobState.RUNNING
    finally:
        other.close()
        store.close()


def test_waiting_for_the_lock_lets_other_greenlets_run(tmp_path: Path) -> None:
    """Under gevent, a write waiting for another process's lock must not stop the event loop:
    another greenlet keeps ticking all the while."""
    script = textwrap.dedent(
        """
        from gevent import monkey

        monkey.patch_all()
        import sqlite3, sys, time
        import gevent
        from app.infra.store import SqliteStore

        path = sys.argv[1]
        store = SqliteStore(path, busy_timeout=5.0)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ticks = []

        def tick():
            while True:
                ticks.append(time.monotonic())
                gevent.sleep(0.01)

        def release_later():
            gevent.sleep(0.5)
            other.execute("COMMIT")

        ticker = gevent.spawn(tick)
        gevent.spawn(release_later)
        before = len(ticks)
        created, _ = store.claim_job("k", "app", "{}", "w", 0.0, 0.0)
        during = len(ticks) - before
        ticker.kill()
        print(created, during)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s.db")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    created, during = result.stdout.split()
    assert created == "True"
    assert int(during) >= 10  # ~50 ticks in 0.5 s; a blocked hub gives 0
