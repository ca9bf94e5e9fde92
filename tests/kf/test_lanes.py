"""Per-customer lanes: in order per key, concurrent across keys, bounded."""

from __future__ import annotations

import threading
import time

from app.jobs.lanes import Lanes


def test_one_key_runs_in_order_and_never_twice_at_once():
    lanes = Lanes(max_workers=8)
    done: list[int] = []
    running = threading.Semaphore(1)

    def task(index: int) -> None:
        assert running.acquire(blocking=False), "two tasks of one key at once"
        for _ in range(5 - index % 5):  # later tasks are shorter: order must still hold
            time.sleep(0)  # let any other thread run: a second task of this key would
        done.append(index)
        running.release()

    for index in range(30):
        lanes.submit("wm1", lambda i=index: task(i))
    assert lanes.wait_idle(5)
    assert done == list(range(30))


def test_keys_run_concurrently_up_to_the_bound():
    lanes = Lanes(max_workers=3)
    active = 0
    peak = 0
    guard = threading.Lock()
    wave = threading.Barrier(3, timeout=10)  # passes only when three tasks run at once

    def task() -> None:
        nonlocal active, peak
        with guard:
            active += 1
            peak = max(peak, active)
        wave.wait()
        with guard:
            active -= 1

    for key in range(6):
        lanes.submit(key, task)
    assert lanes.wait_idle(15)
    assert peak == 3  # two waves of three: three at once, never more
    assert not wave.broken


def test_first_jumps_the_queue_of_its_key_and_of_the_lanes():
    lanes = Lanes(max_workers=1)
    order: list[str] = []
    gate = threading.Event()
    lanes.submit("a", gate.wait)  # occupies the only worker
    lanes.submit("b", lambda: order.append("b1"))
    lanes.submit("c", lambda: order.append("c1"))
    lanes.submit("c", lambda: order.append("c-first"), first=True)
    gate.set()
    assert lanes.wait_idle(5)
    # c's urgent task went first; then the lanes take turns (c queues behind b again).
    assert order == ["c-first", "b1", "c1"]


def test_a_failing_task_does_not_stop_its_lane():
    lanes = Lanes(max_workers=2)
    done = []

    def boom() -> None:
        raise RuntimeError("bug")

    lanes.submit("k", boom)
    lanes.submit("k", lambda: done.append("after"))
    assert lanes.wait_idle(5)
    assert done == ["after"]
    assert lanes.pending == 0
