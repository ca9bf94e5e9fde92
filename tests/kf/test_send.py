"""A kf answer's send through the retrying API client and the outbox, against the fake WeCom API:
the client's hook decides whether a later repeat refusal counts as delivered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import RetryPolicy, WeComClient
from app.infra.store import JobState, MemoryStore
from app.jobs.kf_answers import MAYBE_SENT, KfAnswers, job_key, outbox_entry
from app.jobs.outbox import Outbox
from app.wecom.kf_messages import Text
from tests.conftest import CORP_ID
from tests.kf.conftest import KF_A, KF_SECRET

OWNER = "worker-1"
BUSY = {"kind": "errcode", "errcode": -1}


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    yield memory
    memory.close()


@pytest.fixture
def outbox(fake: FakeWeCom, store: MemoryStore) -> Iterator[Outbox]:
    retry = RetryPolicy(attempts=4, max_time=10.0, backoff=0.01, max_backoff=0.02)
    with WeComClient(
        CORP_ID, KF_SECRET, store, api_base=fake.base_url, timeout=(2.0, 5.0), retry=retry
    ) as client:
        endpoint = SimpleNamespace(name="kf")  # KfAnswers needs only its name and its client
        answers = KfAnswers({"kf": endpoint}, lambda _endpoint: client, store)  # type: ignore[dict-item]
        yield Outbox(store, OWNER, {"kf": answers}, max_attempts=5)


def answer_job(fake: FakeWeCom, store: MemoryStore, outbox: Outbox) -> tuple[str, JobState]:
    """A customer message, its job claimed by OWNER, and the first delivery of its answer."""
    queued = fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    msgid = queued["msgids"][0]
    message = {"msgid": msgid, "origin": 3, "external_userid": "wm1", "msgtype": "text"}
    key = job_key(KF_A, msgid)
    payload = {"endpoint": "kf", "open_kfid": KF_A, "message": message}
    now = time.time()
    store.claim_job(key, "kf", json.dumps(payload), OWNER, now + 30, now)
    entry = outbox_entry(key, KF_A, message, [Text("answer")])
    return key, outbox.finish(key, entry)


def waiting_message(store: MemoryStore, key: str) -> dict[str, Any]:
    job = store.get_job(key)
    assert job is not None and job.state == JobState.OUTBOX
    (message,) = json.loads(job.reply or "{}")["messages"]
    return message


def retry_now(store: MemoryStore, outbox: Outbox) -> JobState:
    """What the background loop does when the retry is due: take the job over and deliver."""
    later = time.time() + 3600
    (job,) = store.claim_expired(OWNER, later, later + 30, 10)
    return outbox.recover(job)


def test_a_try_that_may_have_got_through_makes_the_later_repeat_a_delivery(
    fake: FakeWeCom, store: MemoryStore, outbox: Outbox
) -> None:
    # WeCom takes the first try but its answer is lost; then it is busy for the other three.
    fake.add_faults("kf/send_msg", {"kind": "drop_after"}, BUSY, BUSY, BUSY)
    key, state = answer_job(fake, store, outbox)
    assert state == JobState.OUTBOX  # busy to the end: the outbox retries later
    assert waiting_message(store, key)[MAYBE_SENT] is True
    assert retry_now(store, outbox) == JobState.DONE
    tries = fake.requests("kf/send_msg")
    assert [t["errcode"] for t in tries] == [0, -1, -1, -1, 40058]
    assert len({t["body"]["msgid"] for t in tries}) == 1
    assert len(fake.sent("kf/send_msg")) == 1


def test_clear_refusals_leave_no_mark_and_a_repeat_refusal_is_then_an_error(
    fake: FakeWeCom, store: MemoryStore, outbox: Outbox
) -> None:
    fake.add_faults("kf/send_msg", BUSY, BUSY, BUSY, BUSY)
    key, state = answer_job(fake, store, outbox)
    assert state == JobState.OUTBOX
    assert MAYBE_SENT not in waiting_message(store, key)  # WeCom said "busy" every time
    fake.fault("kf/send_msg", "errcode", errcode=40058)
    assert retry_now(store, outbox) == JobState.DEAD
    job = store.get_job(key)
    assert job is not None and "40058" in (job.last_error or "")
    assert fake.sent("kf/send_msg") == []
