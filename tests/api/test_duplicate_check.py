"""message/send's duplicate check: a try after one that may have reached WeCom carries it, a first
try never does, and the fake delivers a checked repeat once; the outbox and a worker that takes
the job over keep the first try's time in the stored entry. Against the fake over loopback."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import WeComClient
from app.infra.api.client import MAX_DUPLICATE_CHECK_SECONDS, duplicate_check_fields
from app.infra.store import JobState
from app.infra.store.memory import MemoryStore
from app.jobs.app_answers import FIRST_TRY, AppAnswers
from app.jobs.outbox import Outbox
from tests.api.conftest import make_client, send_text

CHECK = "enable_duplicate_check"
INTERVAL = "duplicate_check_interval"
BUSY = {"kind": "errcode", "errcode": -1}
OWNER = "worker-1"


def tries(fake: FakeWeCom) -> list[dict[str, Any]]:
    return [r["body"] for r in fake.requests("message/send")]


def test_a_timeout_after_wecom_took_the_message_is_retried_with_the_check(
    fake: FakeWeCom, store: MemoryStore
) -> None:
    # WeCom takes the first try at once but answers after the client gave up (a read timeout).
    fake.add_faults("message/send", {"kind": "delay_after", "seconds": 1.0})
    with make_client(fake, store, timeout=(2.0, 0.3)) as client:
        assert send_text(client, "u1", "once")["errcode"] == 0
    first, second = tries(fake)
    assert CHECK not in first and INTERVAL not in first
    assert second[CHECK] == 1
    assert 60 <= second[INTERVAL] <= 62  # the seconds since the first try, plus the margin
    assert len(fake.sent("message/send")) == 1  # the user gets one message


def test_a_first_try_never_carries_the_check_so_intended_repeats_go_out(
    client: WeComClient, fake: FakeWeCom
) -> None:
    send_text(client, "u1", "same")
    send_text(client, "u1", "same")
    assert all(CHECK not in body for body in tries(fake))
    assert len(fake.sent("message/send")) == 2


def test_clear_refusals_are_retried_without_the_check(client: WeComClient, fake: FakeWeCom) -> None:
    fake.add_faults("message/send", BUSY, BUSY)  # WeCom answered: it surely took nothing
    send_text(client, "u1", "x")
    assert all(CHECK not in body for body in tries(fake))


def test_a_known_earlier_try_puts_the_check_on_every_try(
    client: WeComClient, fake: FakeWeCom
) -> None:
    send_text(client, "u1", "x")  # an earlier worker's try, delivered
    client.send_message(
        {"touser": "u1", "msgtype": "text", "text": {"content": "x"}},
        maybe_sent_at=time.time() - 125.2,
    )
    checked = tries(fake)[1]
    assert checked[CHECK] == 1 and 186 <= checked[INTERVAL] <= 188
    assert len(fake.sent("message/send")) == 1


def test_the_interval_is_bounded_by_wecoms_maximum() -> None:
    assert duplicate_check_fields(0.1) == {CHECK: 1, INTERVAL: 61}
    assert duplicate_check_fields(10 * 3600)[INTERVAL] == MAX_DUPLICATE_CHECK_SECONDS


def test_the_fake_delivers_a_checked_repeat_again_after_its_interval(
    client: WeComClient, fake: FakeWeCom
) -> None:
    send_text(client, "u1", "x")
    send_text(client, "u1", "x", **{CHECK: 1, INTERVAL: 100})
    assert len(fake.sent("message/send")) == 1
    fake.advance(101)
    send_text(client, "u1", "x", **{CHECK: 1, INTERVAL: 100})
    assert len(fake.sent("message/send")) == 2


@pytest.fixture
def outbox(fake: FakeWeCom, store: MemoryStore, client: WeComClient) -> Outbox:
    endpoint = SimpleNamespace(name="app")  # AppAnswers needs only its name and its client
    answers = AppAnswers({"app": endpoint}, lambda _endpoint: client, store)  # type: ignore[dict-item]
    return Outbox(store, OWNER, {"app": answers}, max_attempts=5)


def test_the_outbox_retry_after_a_lost_answer_carries_the_check(
    fake: FakeWeCom, store: MemoryStore, outbox: Outbox
) -> None:
    # WeCom takes the first try, its answer is lost; then it is busy past the client's retries.
    fake.add_faults("message/send", {"kind": "drop_after"}, BUSY, BUSY, BUSY)
    key = "app:msg:1"
    now = time.time()
    store.claim_job(
        key, "app", json.dumps({"endpoint": "app", "message": {}}), OWNER, now + 30, now
    )
    entry = {"to": "u1", "messages": [{"msgtype": "text", "text": {"content": "late"}}]}
    assert outbox.finish(key, entry) == JobState.OUTBOX
    job = store.get_job(key)
    assert job is not None
    (waiting,) = json.loads(job.reply or "{}")["messages"]
    assert now <= waiting[FIRST_TRY] <= time.time()
    later = time.time() + 3600  # the retry is due: the background loop takes the job over
    (job,) = store.claim_expired(OWNER, later, later + 30, 10)
    assert outbox.recover(job) == JobState.DONE
    bodies = tries(fake)
    assert CHECK not in bodies[0]
    assert all(body[CHECK] == 1 for body in bodies[1:])
    assert all(FIRST_TRY not in body for body in bodies)
    assert len(fake.sent("message/send")) == 1
