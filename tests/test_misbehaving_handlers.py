"""Handlers that raise what no handler should (SystemExit, KeyboardInterrupt, any BaseException):
the callback is answered, the job is a dead letter with the reason, and no background loop dies.
Also the limit on handler starts (WECOM_HANDLER_ATTEMPTS) across takeovers."""

from __future__ import annotations

import json
import threading
import time

import pytest
from greenlet import GreenletExit

from app.infra.store import JobState, MemoryStore
from app.jobs.failures import mark_stopping
from app.jobs.outbox import Outbox
from app.jobs.ticker import Ticker
from tests.helpers import wait_for

RAISED = {"exit": "SystemExit", "interrupt": "KeyboardInterrupt", "base": "Unusual"}


@pytest.fixture
def app_config(app_config):
    return app_config | {
        "WECOM_HANDLERS": "tests.handlers_hostile",
        "WECOM_REPLY_DEADLINE": 1.0,
        "WECOM_LEASE_SECONDS": 1.0,
    }


@pytest.fixture(autouse=True)
def not_stopping():
    mark_stopping(False)
    yield
    mark_stopping(False)


def engine(app):
    return app.extensions["wecom"].engine


@pytest.mark.parametrize("text", sorted(RAISED))
def test_base_exception_in_handler_is_answered_and_recorded_dead(app, wecom, text):
    result = wecom.send_text(text, MsgId=f"31{len(text)}")
    assert result.status == 200 and result.body == b""
    # Recorded before the answer left: the request waited for the handler, not for the deadline.
    job = engine(app).store.get_job(f"app:msg:31{len(text)}")
    assert job.state == JobState.DEAD
    assert RAISED[text] in job.last_error
    assert engine(app).leases.running
    assert wecom.send_text("still here").reply["Content"] == "still here"


def test_base_exception_in_a_taken_over_handler_kills_no_loop(app, wecom):
    wecom.send_text("warm up")  # starts the lease keeper
    store = engine(app).store
    for number, text in enumerate(sorted(RAISED)):
        message = {"FromUserName": "u", "MsgType": "text", "Content": text, "MsgId": f"32{number}"}
        payload = json.dumps({"endpoint": "app", "message": message})
        # A job left by a worker that died: its lease ran out long ago.
        store.claim_job(f"app:msg:32{number}", "app", payload, "gone:1:x", 0.0, time.time())
    for number, text in enumerate(sorted(RAISED)):
        job = wait_for(lambda n=number: (j := store.get_job(f"app:msg:32{n}")).state.final and j)
        assert job.state == JobState.DEAD
        assert RAISED[text] in job.last_error
    assert engine(app).leases.running
    assert wecom.send_text("after").reply["Content"] == "after"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_stopping_is_not_the_handler_failing(app, wecom):
    """gunicorn's timeout raises the worker's SystemExit inside whatever handler runs: the job
    stays unfinished and its lease is let go, so another worker takes it over."""
    wecom.send_text("warm up")
    engine(app).leases.stop()  # no takeover here: this test looks at what is left behind
    mark_stopping()
    result = wecom.send_text("exit", MsgId="330")
    assert result.status == 200 and result.body == b""
    job = engine(app).store.get_job("app:msg:330")
    assert job.state == JobState.DEFERRED
    assert job.last_error is None
    assert "app:msg:330" not in engine(app).leases.held
    # The exit went on up its thread, as the worker's own exit must.
    wait_for(lambda: not any(t.name.endswith("app:msg:330") for t in threading.enumerate()))


class _Kind:
    """An answer kind whose handler run the test scripts."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.raises = raises
        self.runs = 0

    def answer(self, payload):
        self.runs += 1
        if self.raises is not None:
            raise self.raises
        return None

    def send(self, job, entry, message):  # pragma: no cover - nothing is sent here
        raise AssertionError("no send expected")


def test_handler_started_at_most_handler_attempts_times_across_takeovers():
    store = MemoryStore()
    kind = _Kind(raises=GreenletExit())  # each run ends with its worker being stopped
    store.claim_job("app:msg:1", "app", "{}", "first:1:a", 0.0, 0.0)  # start 1 (the claim)
    outboxes = [Outbox(store, f"w{n}:1:a", {"app": kind}, 8, handler_attempts=3) for n in range(3)]
    for now, outbox in zip((10.0, 20.0, 30.0), outboxes, strict=True):
        (job,) = store.claim_expired(outbox.owner, now, now + 1.0, 10)
        if outbox is outboxes[-1]:
            assert outbox.recover(job) == JobState.DEAD
        else:
            with pytest.raises(GreenletExit):
                outbox.recover(job)
            assert store.get_job("app:msg:1").attempts == kind.runs  # stored before the run
    assert kind.runs == 2  # plus the first start: 3 in all
    dead = store.get_job("app:msg:1")
    assert dead.state == JobState.DEAD
    assert dead.attempts == 3
    assert "started 3 times" in dead.last_error
    assert "WECOM_HANDLER_ATTEMPTS=3" in dead.last_error


def test_handler_attempts_setting_is_checked(app_config):
    from app import SettingError, create_app

    with pytest.raises(SettingError) as info:
        create_app(app_config | {"WECOM_HANDLER_ATTEMPTS": "0"})
    assert info.value.setting == "WECOM_HANDLER_ATTEMPTS"


@pytest.mark.parametrize("raised", [SystemExit(1), KeyboardInterrupt(), GeneratorExit()])
def test_ticker_survives_anything_a_tick_raises(raised):
    ticks = []
    done = threading.Event()

    def tick():
        ticks.append(1)
        if len(ticks) >= 3:
            done.set()
        raise raised

    ticker = Ticker("test", 0.01, tick)
    ticker.start()
    try:
        assert done.wait(5)
        assert ticker.running
    finally:
        ticker.stop()
