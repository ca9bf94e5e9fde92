"""A worker that lost a job (its lease ran out and another worker took it over) stops before its
next send; a CLI resend keeps its lease while it works."""

from __future__ import annotations

import json
import threading
import time

import pytest

from app.infra.store import JobState, MemoryStore
from app.jobs.outbox import Outbox
from tests.handlers_slow import RUNS
from tests.helpers import wait_for


class StolenAfterFirstSend:
    """Sends succeed, but another worker takes the job over right after the first one."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.sent: list[str] = []

    def answer(self, payload):  # pragma: no cover - not run here
        raise AssertionError

    def send(self, job, entry, message) -> None:
        self.sent.append(message["text"]["content"])
        if len(self.sent) == 1:
            (taken,) = self.store.claim_expired("thief:2:b", 1e12, 2e12, 10)
            assert taken.key == job.key


def test_delivery_stops_before_the_next_send_once_the_job_is_lost():
    store = MemoryStore()
    store.claim_job("app:msg:1", "app", "{}", "me:1:a", 100.0, 0.0)
    outbox = Outbox(store, "me:1:a", {}, 8, clock=lambda: 50.0, lease_seconds=30.0)
    kind = StolenAfterFirstSend(store)
    outbox.kinds["app"] = kind
    entry = {"to": "u", "messages": [{"msgtype": "text", "text": {"content": p}} for p in "abc"]}
    assert outbox.finish("app:msg:1", entry) == JobState.OUTBOX
    assert kind.sent == ["a"]
    job = store.get_job("app:msg:1")
    assert job.owner == "thief:2:b"
    # What is left for the new owner: the parts not sent yet (and the one that may have been).
    assert [m["text"]["content"] for m in json.loads(job.reply)["messages"]] == ["a", "b", "c"]


@pytest.fixture
def app_config(app_config):
    return app_config | {
        "WECOM_HANDLERS": "tests.handlers_slow",
        "WECOM_REPLY_DEADLINE": 2.0,
        "WECOM_LEASE_SECONDS": 1.0,
    }


@pytest.fixture(autouse=True)
def reset_runs():
    RUNS.clear()


def test_no_passive_reply_from_a_worker_that_lost_the_job(app, wecom, caplog):
    store = app.extensions["wecom"].store

    def take_over() -> None:
        wait_for(lambda: store.get_job("app:msg:901"))
        wait_for(lambda: store.claim_expired("thief:2:b", time.time() + 5, 2e12, 10))

    thief = threading.Thread(target=take_over)
    thief.start()
    result = wecom.send_text("sleep 0.3", MsgId="901")
    thief.join(10)
    # The handler answered in time, but the job is no longer ours: its new owner answers it,
    # so a passive reply here would be a second answer.
    assert result.status == 200 and result.body == b""
    assert store.get_job("app:msg:901").state == JobState.RUNNING
    assert "changed hands" in caplog.text


def test_cli_resend_keeps_its_lease_while_the_handler_runs(app):
    store = app.extensions["wecom"].store
    message = {"FromUserName": "u", "MsgType": "text", "Content": "sleep 2.5", "MsgId": "902"}
    store.claim_job("app:msg:902", "app", json.dumps({"endpoint": "app", "message": message}),
                    "gone:1:x", 0.0, time.time())  # fmt: skip
    store.update_job("app:msg:902", expect_states=(JobState.RUNNING,), state=JobState.DEAD,
                     now=time.time())  # fmt: skip
    result: list = []
    resend = threading.Thread(
        target=lambda: result.append(
            app.test_cli_runner().invoke(args=["deliveries", "resend", "app:msg:902"])
        )
    )
    resend.start()
    wait_for(lambda: RUNS["902"] == 1)
    taken = []
    while resend.is_alive():  # another worker's sweep, all along the 2.5 s run (lease 1 s)
        taken += store.claim_expired("other:3:c", time.time(), time.time() + 30, 10)
        time.sleep(0.05)
    resend.join()
    assert taken == []
    assert RUNS["902"] == 1
    assert "app:msg:902: dead" in result[0].output  # no secret: the answer cannot go out
