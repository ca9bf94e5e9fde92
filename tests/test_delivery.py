"""Late answers through message/send: the outbox, retries, dead letters and re-sending,
against the fake WeCom API over loopback (the real client code path).

Each late handler holds at a gate until its callback has been answered empty, so it is late by
construction; a job in a final state (done, dead) sends nothing more, so waiting for that state
replaces waiting "a while" before counting the sends.
"""

from __future__ import annotations

import time

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.store import JobState
from tests.conftest import CORP_ID
from tests.handlers_slow import RUNS
from tests.helpers import wait_for

SECRET = "app-secret-for-tests"


@pytest.fixture
def fake():
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return app_config | {
        "WECOM_HANDLERS": "tests.handlers_slow",
        "WECOM_REPLY_DEADLINE": 0.2,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_BASE": fake.base_url,
    }


@pytest.fixture(autouse=True)
def reset_runs():
    RUNS.clear()


def job(app, msg_id: str):
    return app.extensions["wecom"].store.get_job(f"app:msg:{msg_id}")


def answer_late(wecom, gates, content: str, gate: str, **fields: str) -> None:
    """Send ``content`` (a handler that holds at ``gate``); it is answered empty at the deadline,
    then the handler is let go."""
    result = wecom.send_text(content, **fields)
    assert (result.status, result.body) == (200, b"")
    gates.open(gate)


def test_late_answer_reaches_message_send_exactly_once(app, wecom, fake, gates):
    answer_late(wecom, gates, "hold g200", "g200", MsgId="200", FromUserName="lisi")
    wait_for(lambda: job(app, "200").state == JobState.DONE)
    sent = fake.sent("message/send")
    assert len(sent) == 1
    assert sent[0]["body"]["touser"] == "lisi"
    assert sent[0]["body"]["agentid"] == 1000002
    assert sent[0]["body"]["text"]["content"] == "released g200"


def test_long_late_answer_is_split_on_character_boundaries(app, wecom, fake, gates):
    answer_late(wecom, gates, "long g201", "g201", MsgId="201")
    wait_for(lambda: job(app, "201").state == JobState.DONE)
    parts = [item["body"]["text"]["content"] for item in fake.sent("message/send")]
    assert "".join(parts) == "长" * 1500
    assert all(len(part.encode()) <= 2048 for part in parts)
    assert len(parts) == 3


def test_busy_and_rate_limit_faults_are_retried(app, wecom, fake, gates):
    fake.fault("message/send", "errcode", errcode=-1)
    fake.fault("message/send", "errcode", errcode=45009)
    answer_late(wecom, gates, "hold g202", "g202", MsgId="202")
    wait_for(lambda: job(app, "202").state == JobState.DONE)
    assert len(fake.sent("message/send")) == 1
    errcodes = [r["errcode"] for r in fake.requests("message/send")]
    assert errcodes[:2] == [-1, 45009]


def test_expired_token_is_refreshed_once_and_the_send_retried(app, wecom, fake, gates):
    answer_late(wecom, gates, "hold g203", "g203", MsgId="203")
    wait_for(lambda: job(app, "203").state == JobState.DONE)
    fake.fault("message/send", "token_expired")
    answer_late(wecom, gates, "hold g204", "g204", MsgId="204")
    wait_for(lambda: job(app, "204").state == JobState.DONE)
    assert fake.gettoken_calls == 2
    assert len(fake.sent("message/send")) == 2


def test_refusal_is_dead_lettered_and_can_be_resent(app, wecom, fake, gates):
    fake.fault("message/send", "errcode", errcode=81013)
    answer_late(wecom, gates, "hold g205", "g205", MsgId="205")
    dead = wait_for(lambda: job(app, "205").state == JobState.DEAD and job(app, "205"))
    assert "81013" in dead.last_error
    assert fake.sent("message/send") == []

    runner = app.test_cli_runner()
    listed = runner.invoke(args=["deliveries", "list"])
    assert "app:msg:205" in listed.output and "81013" in listed.output
    resent = runner.invoke(args=["deliveries", "resend", "app:msg:205"])
    assert resent.exit_code == 0, resent.output
    assert "app:msg:205: done" in resent.output
    assert [m["body"]["text"]["content"] for m in fake.sent("message/send")] == ["released g205"]
    assert RUNS["205"] == 1  # the recorded answer was re-sent; the handler did not run again


def test_failed_handler_is_run_again_by_resend(app, wecom, fake):
    wecom.send_text("boom", MsgId="206")
    assert job(app, "206").state == JobState.DEAD
    resent = app.test_cli_runner().invoke(args=["deliveries", "resend", "--all"])
    assert "app:msg:206: dead" in resent.output  # it fails again, and says so
    assert RUNS["206"] == 2
    assert resent.exit_code == 1


def test_transient_failures_beyond_the_client_retries_go_back_to_the_outbox(
    app, wecom, fake, gates
):
    fake.fault("message/send", "http", status=502, count=20)
    answer_late(wecom, gates, "hold g207", "g207", MsgId="207")
    waiting = wait_for(
        lambda: (j := job(app, "207")).state == JobState.OUTBOX and j.attempts == 1 and j
    )
    assert waiting.owner is None
    assert waiting.lease_until > time.time()  # the next attempt is scheduled, not lost
    assert "502" in waiting.last_error


def test_a_resend_after_a_lost_answer_carries_the_duplicate_check(app, wecom, fake, gates):
    fake.fault(
        "message/send", "drop_after"
    )  # WeCom took it; the connection broke before the answer
    answer_late(wecom, gates, "hold g208", "g208", MsgId="208")
    wait_for(lambda: job(app, "208").state == JobState.DONE)
    first, second = (r["body"] for r in fake.requests("message/send"))
    assert "enable_duplicate_check" not in first
    assert second["enable_duplicate_check"] == 1 and second["duplicate_check_interval"] >= 60
    assert len(fake.sent("message/send")) == 1
