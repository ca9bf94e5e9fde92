"""The handler greenlet beside a request (app.jobs.beside), on gevent's real hub and timers."""

from __future__ import annotations

import contextvars
import threading

import gevent
import pytest
from greenlet import getcurrent

from app.jobs import beside
from app.jobs.beside import _run_beside_greenlet, run_beside

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


@pytest.fixture(autouse=True)
def _no_idle_greenlets():
    beside._IDLE.clear()
    yield
    beside._IDLE.clear()


def test_a_handler_that_returns_at_once_is_done_when_the_call_returns():
    seen = []
    _run_beside_greenlet(lambda x: seen.append((x, getcurrent())), ("a",), 5.0)
    assert [x for x, _ in seen] == ["a"]
    assert seen[0][1] is not getcurrent()  # it ran in a greenlet of its own
    assert len(beside._IDLE) == 1  # which now waits for the next handler


def test_idle_handler_greenlets_are_used_again_and_their_number_is_capped(monkeypatch):
    used = []
    for _ in range(3):
        _run_beside_greenlet(lambda: used.append(getcurrent()), (), 5.0)
    assert used[0] is used[1] is used[2]
    monkeypatch.setattr(beside, "MAX_IDLE", 0)
    _run_beside_greenlet(lambda: None, (), 5.0)
    assert beside._IDLE == []  # over the cap it ended instead of waiting


def test_a_blocking_handler_is_waited_for_within_the_budget():
    done = []

    def handler() -> None:
        gevent.sleep(0.01)
        done.append(True)

    _run_beside_greenlet(handler, (), 5.0)
    assert done == [True]


def test_past_the_budget_the_call_returns_and_the_handler_ends_on_its_own():
    release = gevent.event.Event()
    finished = gevent.event.Event()

    def handler() -> None:
        release.wait()
        finished.set()

    _run_beside_greenlet(handler, (), 0.01)
    assert not finished.is_set()  # back here while the handler still waits
    release.set()
    # Its end goes to the hub, not into this greenlet, which waits for something else meanwhile.
    assert finished.wait(5.0) is True
    assert gevent.sleep(0.01) is None
    (late,) = beside._IDLE
    assert late.parent is gevent.get_hub()
    # The late greenlet is idle again and serves the next handler normally.
    seen = []
    _run_beside_greenlet(lambda: seen.append(1), (), 5.0)
    assert seen == [1]


def test_with_no_budget_left_the_handler_still_runs_but_nobody_waits():
    ran = gevent.event.Event()
    _run_beside_greenlet(ran.set, (), 0.0)
    assert not ran.is_set()
    assert ran.wait(5.0)


def test_each_handler_starts_from_a_fresh_context():
    seen = []

    def handler(value: str) -> None:
        seen.append(MARK.get())
        MARK.set(value)

    for value in ("first", "second"):
        _run_beside_greenlet(handler, (value,), 5.0)
    assert seen == ["unset", "unset"]


def test_a_handler_greenlet_stopped_by_greenletexit_just_ends():
    from greenlet import GreenletExit

    def handler() -> None:
        raise GreenletExit

    _run_beside_greenlet(handler, (), 5.0)
    assert beside._IDLE == []  # ended, not kept
    seen = []
    _run_beside_greenlet(lambda: seen.append(1), (), 5.0)
    assert seen == [1]


def test_without_gevent_patching_the_handler_runs_in_a_thread_and_is_waited_for():
    done = threading.Event()
    threads = []

    def handler() -> None:
        threads.append(threading.current_thread())
        done.set()

    run_beside(handler, (), 5.0, done)
    assert done.is_set()
    assert threads[0] is not threading.current_thread()
