"""Reply deadline and retries through the Flask test client (in-memory store).

Handlers that must outlive the budget hold at a gate the test opens, so "the handler missed the
deadline" is a fact of the test, not a race between two sleeps. Tests that expect a passive reply
get a generous budget (they never wait for it); tests that expect the deadline get a short one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.devtools.simulator import Simulator
from app.infra.store import JobState, MemoryStore
from app.jobs.deadline import DeadlineResponder
from app.jobs.leases import LeaseKeeper
from app.jobs.outbox import Outbox
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.handlers_slow import RUNS
from tests.helpers import wait_for

GENEROUS = 4.0
SHORT = 0.2


@pytest.fixture
def budget() -> float:
    return GENEROUS


@pytest.fixture
def app_config(app_config, budget):
    return app_config | {"WECOM_HANDLERS": "tests.handlers_slow", "WECOM_REPLY_DEADLINE": budget}


@pytest.fixture(autouse=True)
def reset_runs():
    RUNS.clear()


def job_for(app, msg_id: str):
    return app.extensions["wecom"].store.get_job(f"app:msg:{msg_id}")


def test_fast_handler_answers_passively_and_records_it(app, wecom):
    result = wecom.send_text("sleep 0.05", MsgId="100")
    assert result.reply["Content"] == "slept 0.05"
    job = job_for(app, "100")
    assert job.state == JobState.PASSIVE
    assert "slept 0.05" in job.reply


@pytest.mark.parametrize("budget", [SHORT])
def test_slow_handler_is_answered_empty_at_the_deadline(app, wecom, gates):
    result = wecom.send_text("hold g101", MsgId="101")  # the handler is still holding
    assert result.status == 200
    assert result.body == b""
    assert result.elapsed >= SHORT  # at the deadline, not before
    assert job_for(app, "101").state == JobState.DEFERRED
    gates.open("g101")
    # No secret is configured: the late answer cannot go out, and that is recorded, not dropped.
    job = wait_for(lambda: (j := job_for(app, "101")).state == JobState.DEAD and j)
    assert "WECOM_SECRET" in job.last_error


def test_retry_during_the_first_run_waits_and_never_runs_the_handler_twice(
    app, wecom, gates, caplog
):
    caplog.set_level(logging.INFO, "app.jobs.deadline")
    fields = wecom.message_fields("text", Content="hold g102", MsgId="102")
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(wecom.send_fields, fields)
        wait_for(lambda: RUNS["102"] == 1)  # the first run is in the handler
        retries = [pool.submit(wecom.send_fields, fields) for _ in range(2)]
        wait_for(lambda: caplog.text.count("retried callback app:msg:102") == 2)
        gates.open("g102")  # both retries are waiting for the first run
        results = [first.result()] + [retry.result() for retry in retries]
    assert RUNS["102"] == 1
    # Every delivery of the callback gets the same passive answer: WeCom shows it once.
    assert [result.reply["Content"] for result in results] == ["released g102"] * 3


def test_retry_after_the_answer_gets_the_same_answer(app, wecom):
    fields = wecom.message_fields("text", Content="hello", MsgId="103")
    first = wecom.send_fields(fields)
    second = wecom.send_fields(fields)
    assert first.reply["Content"] == second.reply["Content"] == "hello"
    assert RUNS["103"] == 1


@pytest.mark.parametrize("budget", [SHORT])
def test_retry_of_a_deferred_callback_is_answered_empty(app, wecom, gates):
    fields = wecom.message_fields("text", Content="hold g104", MsgId="104")
    assert wecom.send_fields(fields).body == b""
    again = wecom.send_fields(fields)
    assert again.status == 200 and again.body == b""
    gates.open("g104")
    wait_for(lambda: job_for(app, "104").state == JobState.DEAD)  # finished (no secret to send)
    assert RUNS["104"] == 1


def test_events_are_deduplicated_on_their_content(app, wecom):
    fields = wecom.message_fields("event", Event="click", EventKey="K", CreateTime="1700000000")
    wecom.send_fields(fields)
    wecom.send_fields(fields)
    other = dict(fields, EventKey="K2")  # same user and second, different event: not a retry
    wecom.send_fields(other)
    assert RUNS["click"] == 2


def test_handler_error_is_recorded_as_failed(app, wecom, caplog):
    result = wecom.send_text("boom", MsgId="105")
    assert result.status == 200 and result.body == b""
    job = job_for(app, "105")
    assert job.state == JobState.DEAD
    assert "RuntimeError" in job.last_error
    assert "MsgId=105" in caplog.text


# -- the budget on an injected clock -----------------------------------------------------------


class FakeMonotonic:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1e9  # far from the real monotonic clock, so mixing them up shows

    def __call__(self) -> float:
        return self.now


def responder_on(app, monotonic: FakeMonotonic, deadline: float) -> DeadlineResponder:
    store = MemoryStore()
    loop = LeaseKeeper(store, "test-owner", recover=lambda job: None)
    outbox = Outbox(store, "test-owner", {}, max_attempts=1)
    return DeadlineResponder(
        store,
        loop,
        outbox,
        deadline,
        monotonic=monotonic,
    )


def message(msg_id: str, content: str) -> dict[str, str]:
    return {
        "ToUserName": "corp",
        "FromUserName": "zhangsan",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id,
    }


def test_remaining_budget_counts_from_the_arrival_on_the_injected_clock(app):
    clock = FakeMonotonic()
    responder = responder_on(app, clock, deadline=4.0)
    arrived = clock.now
    assert responder.remaining(arrived) == 4.0
    clock.now += 1.5
    assert responder.remaining(arrived) == 2.5
    clock.now += 10
    assert responder.remaining(arrived) == 0.0


def test_callback_whose_budget_is_spent_on_arrival_is_deferred_at_once(app, gates):
    """An hour-long budget, but by the injected clock the callback arrived an hour ago: the
    answer is empty at once, while the handler holds. Waiting on the real clock would hold the
    test for an hour, so a wait of 10 s tells the two apart."""
    clock = FakeMonotonic()
    responder = responder_on(app, clock, deadline=3600.0)
    endpoint = app.extensions["wecom"].endpoints["app"]
    answers: list[str | None] = []
    responding = threading.Thread(
        target=lambda: answers.append(
            responder.respond(endpoint, message("110", "hold g110"), clock.now - 3600.0)
        ),
        daemon=True,
    )
    responding.start()
    responding.join(10)
    assert answers == [None]
    assert responder.store.get_job("app:msg:110").state == JobState.DEFERRED
    # A retry arriving with its own budget spent is answered empty at once as well.
    assert responder.respond(endpoint, message("110", "hold g110"), clock.now - 3600.0) is None
    gates.open("g110")
    wait_for(lambda: responder.store.get_job("app:msg:110").state == JobState.DEAD)
    assert RUNS["110"] == 1


def test_callback_with_budget_left_gets_the_passive_answer(app, gates):
    clock = FakeMonotonic()
    responder = responder_on(app, clock, deadline=3600.0)
    endpoint = app.extensions["wecom"].endpoints["app"]
    gates.open("g111")
    answer = responder.respond(endpoint, message("111", "hold g111"), clock.now)
    assert answer is not None
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID)  # opens the reply as WeCom would
    assert wecom.open_reply(answer.encode())["Content"] == "released g111"
    assert responder.store.get_job("app:msg:111").state == JobState.PASSIVE
