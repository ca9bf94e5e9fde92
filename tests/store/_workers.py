"""Process bodies for test_sqlite_concurrency and test_redis, importable by spawned children.

All processes open the store at once (so creating the schema races too), wait for each other,
then run their body together. The store is an SQLite file path, or ``<redis url> <key prefix>``.
Each body bounds its loop by count and time. A process puts ``(worker, result)`` or
``(worker, "error", traceback)`` on the queue.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from typing import Any

from app.infra.store import JobState, SqliteStore, Store, open_store

DEADLINE = 60.0  # seconds any one worker may run


def open_spec(spec: str) -> Store:
    """The store a race runs on: ``"redis://... prefix"`` or an SQLite file path."""
    if spec.startswith("redis://"):
        url, prefix = spec.split(" ", 1)
        return open_store(url, prefix=prefix)
    return SqliteStore(spec)


def _report(
    body: Callable[..., object],
    worker: int,
    barrier: Barrier,
    results: Queue[Any],
    db: str,
    *args: Any,
) -> None:
    try:
        barrier.wait(timeout=60)
        store = open_spec(db)
        try:
            barrier.wait(timeout=60)
            results.put((worker, body(worker, store, *args)))
        finally:
            store.close()
    except BaseException:
        barrier.abort()  # the others stop waiting for this one
        results.put((worker, "error", traceback.format_exc()))


def open_fresh(
    worker: int, barrier: Barrier, results: Queue[Any], directory: str, rounds: int
) -> None:
    """Open a new database file together with the other processes, ``rounds`` times."""
    try:
        for n in range(rounds):
            barrier.wait(timeout=60)
            store = SqliteStore(f"{directory}/fresh-{n}.db")
            store.set_value(f"opened-by-{worker}", "yes")
            store.close()
        results.put((worker, rounds))
    except BaseException:
        barrier.abort()
        results.put((worker, "error", traceback.format_exc()))


def claim_keys(
    worker: int, barrier: Barrier, results: Queue[Any], db: str, keys: list[str]
) -> None:
    _report(_claim_keys, worker, barrier, results, db, keys)


def _claim_keys(worker: int, store: Store, keys: list[str]) -> list[str]:
    order = list(keys)
    random.Random(worker).shuffle(order)
    created = []
    started = time.monotonic()
    for key in order:
        if time.monotonic() - started > DEADLINE:
            raise TimeoutError("claim_keys ran out of time")
        now = time.time()
        ok, job = store.claim_job(key, "app", f'{{"by": {worker}}}', f"w{worker}", now + 60, now)
        if ok:
            created.append(key)
        elif job.owner == f"w{worker}":
            raise AssertionError(f"{key} reported as existing but owned by this worker")
        time.sleep(0.0002)  # give the other processes the CPU, so the claims interleave
    return created


def claim_expired(worker: int, barrier: Barrier, results: Queue[Any], db: str, limit: int) -> None:
    _report(_claim_expired, worker, barrier, results, db, limit)


def _claim_expired(worker: int, store: Store, limit: int) -> list[str]:
    taken: list[str] = []
    started = time.monotonic()
    for _ in range(10_000):
        if time.monotonic() - started > DEADLINE:
            raise TimeoutError("claim_expired ran out of time")
        now = time.time()
        jobs = store.claim_expired(f"w{worker}", now, now + 3600, limit)
        if not jobs:
            break
        taken.extend(job.key for job in jobs)
        time.sleep(0.0005)  # "handle" them; lets the other processes in
    return taken


def finish_jobs(
    worker: int, barrier: Barrier, results: Queue[Any], db: str, keys: list[str]
) -> None:
    _report(_finish_jobs, worker, barrier, results, db, keys)


def _finish_jobs(worker: int, store: Store, keys: list[str]) -> list[str]:
    won = []
    order = list(keys)
    random.Random(worker).shuffle(order)
    started = time.monotonic()
    for key in order:
        if time.monotonic() - started > DEADLINE:
            raise TimeoutError("finish_jobs ran out of time")
        time.sleep(0.0002)
        if store.update_job(
            key,
            expect_states=(JobState.RUNNING,),
            state=JobState.DONE,
            owner=f"w{worker}",
            now=time.time(),
        ):
            won.append(key)
    return won


def hold_lock(
    worker: int,
    barrier: Barrier,
    results: Queue[Any],
    db: str,
    rounds: int,
    holders: Synchronized[int],
    overlaps: Synchronized[int],
) -> None:
    _report(_hold_lock, worker, barrier, results, db, rounds, holders, overlaps)


def _hold_lock(
    worker: int,
    store: Store,
    rounds: int,
    holders: Synchronized[int],
    overlaps: Synchronized[int],
) -> int:
    """Count this worker's acquisitions; count any moment two workers held the lock."""
    me = f"w{worker}"
    acquired = 0
    started = time.monotonic()
    for _ in range(rounds):
        if time.monotonic() - started > DEADLINE:
            break
        now = time.time()
        if not store.acquire_lock("the-lock", me, now + 30, now):
            time.sleep(0.0002)
            continue
        acquired += 1
        with holders.get_lock():
            holders.value += 1
            if holders.value > 1:
                overlaps.value += 1
        time.sleep(0.0005)
        with holders.get_lock():
            holders.value -= 1
        if not store.release_lock("the-lock", me):
            raise AssertionError("lost a lock that had 30 s left")
    return acquired
