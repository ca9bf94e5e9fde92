"""Real processes racing on one SQLite file, as gunicorn workers do; and greenlets under gevent."""

from __future__ import annotations

import multiprocessing
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.infra.store import JobState, SqliteStore
from tests.helpers import assert_script_prints_ok

from . import _workers

PROCESSES = 4


def race(target: Callable[..., None], *args: Any, processes: int = PROCESSES) -> list[Any]:
    """Run ``target(worker, barrier, results, *args)`` in spawned processes; their results."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=target, args=(n, barrier, results, *args)) for n in range(processes)
    ]
    for process in workers:
        process.start()
    try:
        reports = [results.get(timeout=120) for _ in workers]
    finally:
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    errors = [report[2] for report in reports if len(report) == 3]
    assert not errors, "\n".join(errors)
    assert [process.exitcode for process in workers] == [0] * processes
    return [result for _, result in sorted(reports, key=lambda report: report[0])]


def test_workers_open_a_new_file_together(tmp_path: Path) -> None:
    """Switching a new file to WAL can fail at once when several open it; it must be retried."""
    rounds = 15
    assert race(_workers.open_fresh, str(tmp_path), rounds, processes=6) == [rounds] * 6
    for n in range(rounds):
        store = SqliteStore(tmp_path / f"fresh-{n}.db")
        try:
            assert all(store.get_value(f"opened-by-{w}", 0.0) == "yes" for w in range(6))
        finally:
            store.close()


def test_claim_job_creates_each_key_once(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "state.db"  # does not exist yet: the workers create it together
    keys = [f"msg-{i}" for i in range(200)]

    reports = race(_workers.claim_keys, str(db), keys)

    created = Counter(key for keys_created in reports for key in keys_created)
    assert set(created) == set(keys)
    assert max(created.values()) == 1
    store = SqliteStore(db)
    try:
        for worker, keys_created in enumerate(reports):
            for key in keys_created:
                job = store.get_job(key)
                assert job is not None
                assert job.owner == f"w{worker}"
                assert job.payload == f'{{"by": {worker}}}'
    finally:
        store.close()


def test_claim_expired_hands_out_each_job_once(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    now = time.time()
    keys = [f"job-{i}" for i in range(300)]
    for i, key in enumerate(keys):
        store.claim_job(key, "app", "{}", "dead-worker", now - 1000 + i, now - 2000)
    for key in keys[::3]:  # a mix of active states, all expired
        store.update_job(key, expect_states=(JobState.RUNNING,), state=JobState.OUTBOX, now=now)
    store.close()

    reports = race(_workers.claim_expired, str(db), 3)

    handed_out = Counter(key for taken in reports for key in taken)
    assert set(handed_out) == set(keys)
    assert max(handed_out.values()) == 1
    store = SqliteStore(db)
    try:
        for worker, taken in enumerate(reports):
            for key in taken:
                assert store.get_job(key).owner == f"w{worker}"  # type: ignore[union-attr]
    finally:
        store.close()


def test_update_job_cas_has_one_winner_per_job(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    now = time.time()
    keys = [f"job-{i}" for i in range(200)]
    for key in keys:
        store.claim_job(key, "app", "{}", "w", now + 60, now)
    store.close()

    reports = race(_workers.finish_jobs, str(db), keys)

    winners = Counter(key for won in reports for key in won)
    assert set(winners) == set(keys)
    assert max(winners.values()) == 1
    store = SqliteStore(db)
    try:
        for worker, won in enumerate(reports):
            for key in won:
                job = store.get_job(key)
                assert job is not None
                assert (job.state, job.owner) == (JobState.DONE, f"w{worker}")
    finally:
        store.close()


def test_lock_has_at_most_one_holder(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    SqliteStore(db).close()
    ctx = multiprocessing.get_context("spawn")
    holders = ctx.Value("i", 0)
    overlaps = ctx.Value("i", 0)

    acquired = race(_workers.hold_lock, str(db), 300, holders, overlaps, processes=6)

    assert overlaps.value == 0
    assert holders.value == 0
    assert sum(acquired) > 0


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import sys

    import gevent

    from app.infra.store import MemoryStore, SqliteStore

    for store in (MemoryStore(), SqliteStore(sys.argv[1])):
        created, taken, locked = [], [], []

        def work(n, store=store, created=created, taken=taken, locked=locked):
            for i in range(50):
                ok, _ = store.claim_job(f"k{i}", "app", "{}", f"g{n}", 0.0, 0.0)
                if ok:
                    created.append(i)
                gevent.sleep(0)
            for _ in range(100):
                jobs = store.claim_expired(f"g{n}", 1.0, 100.0, 2)
                if not jobs:
                    break
                taken.extend(job.key for job in jobs)
                gevent.sleep(0)
            if store.acquire_lock("l", f"g{n}", 10.0, 1.0):
                locked.append(n)

        gevent.joinall([gevent.spawn(work, n) for n in range(20)], timeout=60, raise_error=True)
        assert sorted(created) == list(range(50)), created
        assert sorted(taken) == sorted(f"k{i}" for i in range(50)), taken
        assert len(locked) == 1, locked
        store.close()
    print("ok")
    """
)


def test_stores_work_under_gevent_monkey_patching(tmp_path: Path) -> None:
    assert_script_prints_ok(GEVENT_SCRIPT, str(tmp_path / "g.db"))
