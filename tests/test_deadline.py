"""Reply deadline and retries through the Flask test client (in-memory store)."""

from __future__ import annotations

import time

import pytest

from app.infra.store import JobState
from tests.handlers_slow import RUNS


@pytest.fixture
def app_config(app_config):
    return app_config | {"WECOM_HANDLERS": "tests.handlers_slow", "WECOM_REPLY_DEADLINE": 0.5}


@pytest.fixture(autouse=True)
def reset_runs():
    RUNS.clear()


def job_for(app, msg_id: str):
    return app.extensions["wecom"].store.get_job(f"app:msg:{msg_id}")


def wait_for_state(app, msg_id: str, states: set[JobState], timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_for(app, msg_id)
        if job is not None and job.state in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {msg_id} never reached {states}: {job_for(app, msg_id)}")


def test_fast_handler_answers_passively_and_records_it(app, wecom):
    result = wecom.send_text("sleep 0.05", MsgId="100")
    assert result.reply["Content"] == "slept 0.05"
    job = job_for(app, "100")
    assert job.state == JobState.PASSIVE
    assert "slept 0.05" in job.reply


def test_slow_handler_is_answered_empty_at_the_deadline(app, wecom):
    result = wecom.send_text("sleep 1.5", MsgId="101")
    assert result.status == 200
    assert result.body == b""
    assert 0.4 < result.elapsed < 1.0
    assert job_for(app, "101").state == JobState.DEFERRED
    # No secret is configured: the late answer cannot go out, and that is recorded, not dropped.
    job = wait_for_state(app, "101", {JobState.DEAD})
    assert "WECOM_SECRET" in job.last_error


def test_retry_during_the_first_run_waits_and_never_runs_the_handler_twice(app, wecom):
    from concurrent.futures import ThreadPoolExecutor

    fields = wecom.message_fields("text", Content="sleep 0.3", MsgId="102")
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(wecom.send_fields, fields)
        time.sleep(0.1)
        retries = [pool.submit(wecom.send_fields, fields) for _ in range(2)]
        results = [first.result()] + [retry.result() for retry in retries]
    assert RUNS["102"] == 1
    # Every delivery of the callback gets the same passive answer: WeCom shows it once.
    assert [result.reply["Content"] for result in results] == ["slept 0.3"] * 3


def test_retry_after_the_answer_gets_the_same_answer(app, wecom):
    fields = wecom.message_fields("text", Content="hello", MsgId="103")
    first = wecom.send_fields(fields)
    second = wecom.send_fields(fields)
    assert first.reply["Content"] == second.reply["Content"] == "hello"
    assert RUNS["103"] == 1


def test_retry_of_a_deferred_callback_is_answered_empty(app, wecom):
    fields = wecom.message_fields("text", Content="sleep 1", MsgId="104")
    assert wecom.send_fields(fields).body == b""
    again = wecom.send_fields(fields)
    assert again.status == 200 and again.body == b""
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
