"""End to end on a real gunicorn with gevent workers and the fake WeCom API: the reply window,
retries, late delivery through message/send, worker death, the shared access_token.

The service runs with a 1 s reply budget (WECOM_REPLY_DEADLINE=1) instead of WeCom's 4 s, and
handlers that must be late hold at a gate (tests.helpers.Gates) that the test opens only after
the callback was answered: the deadline behaviour is the same, the test does not wait 10 s for
it, and "late" never depends on how busy the machine is. "Sent once" is read from the job: once
it is done (a final state), nothing sends it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator, requests_transport
from app.infra.store import JobState, SqliteStore
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.helpers import GATES_VARIABLE, Gates, wait_for

pytestmark = pytest.mark.e2e

SECRET = "e2e-app-secret"
BUDGET = 1.0


@pytest.fixture(scope="module")
def fake():
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as server:
        yield server


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("record") / "runs.txt"


@pytest.fixture(scope="module")
def gates(tmp_path_factory) -> Gates:
    return Gates(tmp_path_factory.mktemp("gates"))


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store") / "state.db"


@pytest.fixture(scope="module")
def service(fake, record, gates, store_path):
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": f"sqlite:///{store_path}",
        "WECOM_HANDLERS": "tests.handlers_slow",
        "WECOM_REPLY_DEADLINE": str(BUDGET),
        "WECOM_LEASE_SECONDS": "3",
        "WECOM_TEST_RECORD": str(record),
        GATES_VARIABLE: str(gates.folder),
    }
    with LiveService(env, workers=2) as live:
        yield live


@pytest.fixture(scope="module")
def jobs(service, store_path) -> Iterator[SqliteStore]:
    """The service's own store, read from the test."""
    store = SqliteStore(store_path)
    yield store
    store.close()


@pytest.fixture
def wecom(service) -> Simulator:
    return Simulator(service.url + "/", TOKEN, AES_KEY, CORP_ID)


def runs(record: Path, key: str) -> list[int]:
    """The pids of the workers that ran the handler for ``key``."""
    if not record.exists():
        return []
    return [
        int(pid)
        for line in record.read_text().splitlines()
        for msg, pid in [line.split()]
        if msg == key
    ]


def sent_to(fake: FakeWeCom, user: str) -> list[str]:
    return [
        item["body"]["text"]["content"]
        for item in fake.sent("message/send")
        if item["body"]["touser"] == user
    ]


def done(jobs: SqliteStore, *msg_ids: str) -> bool:
    return all(
        (job := jobs.get_job(f"app:msg:{msg_id}")) is not None and job.state == JobState.DONE
        for msg_id in msg_ids
    )


def test_handler_past_the_budget_is_answered_empty_in_time_then_sent_once(
    wecom, fake, record, gates, jobs
):
    result = wecom.send_text("hold e9001", MsgId="9001", FromUserName="slow")
    # The handler is still holding: the empty answer came from the budget, not from the handler.
    assert (result.status, result.body) == (200, b"")
    assert result.elapsed >= BUDGET
    assert jobs.get_job("app:msg:9001").state == JobState.DEFERRED
    gates.open("e9001")
    wait_for(lambda: done(jobs, "9001"), timeout=20)
    assert sent_to(fake, "slow") == ["released e9001"]
    assert len(runs(record, "9001")) == 1


def test_two_hundred_handlers_run_at_once_and_each_is_answered_once(
    service, fake, record, gates, jobs
):
    """200 handlers hold at one gate, opened only once the record shows all 200 running at the
    same time: the gevent workers ran them side by side. Each callback is then answered exactly
    once: passively, or (if its budget ran out while the others arrived) through the API."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=200))
    wecom = Simulator(
        service.url + "/",
        TOKEN,
        AES_KEY,
        CORP_ID,
        transport=requests_transport(timeout=30, session=session),
    )
    msg_ids = [str(10_000 + index) for index in range(200)]

    def one(index: int):
        return wecom.send_text("hold e200", MsgId=msg_ids[index], FromUserName=f"c{index}")

    with ThreadPoolExecutor(200) as pool:
        pending = [pool.submit(one, index) for index in range(200)]
        wait_for(lambda: all(runs(record, msg_id) for msg_id in msg_ids), timeout=60)
        gates.open("e200")
        results = [future.result(timeout=60) for future in pending]
    session.close()
    assert all(result.status == 200 for result in results)
    late = [index for index, result in enumerate(results) if result.body == b""]
    passive = [index for index, result in enumerate(results) if result.body != b""]
    assert all(results[index].reply["Content"] == "released e200" for index in passive)
    wait_for(lambda: done(jobs, *(msg_ids[index] for index in late)), timeout=30)
    assert all(sent_to(fake, f"c{index}") == ["released e200"] for index in late)
    assert all(sent_to(fake, f"c{index}") == [] for index in passive)
    assert all(len(runs(record, msg_id)) == 1 for msg_id in msg_ids)
    print(f"200 handlers at once: {len(passive)} answered passively, {len(late)} through the API")


def test_callback_sent_three_times_runs_once_and_answers_once(wecom, fake, record, gates, jobs):
    fields = wecom.message_fields("text", Content="hold e9002", MsgId="9002", FromUserName="retry3")
    first = wecom.send_fields(fields)  # answered empty at the deadline, like a timeout to WeCom
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: wecom.send_fields(fields), range(2)))
    assert [r.body for r in [first, *again]] == [b"", b"", b""]
    gates.open("e9002")
    wait_for(lambda: done(jobs, "9002"), timeout=20)
    assert sent_to(fake, "retry3") == ["released e9002"]
    assert len(runs(record, "9002")) == 1


def test_worker_killed_mid_handler_does_not_lose_the_message(
    service, wecom, fake, record, gates, jobs
):
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(wecom.send_text, "hold e9003", MsgId="9003", FromUserName="killed")
        pids = wait_for(lambda: runs(record, "9003"), timeout=10)
        os.kill(pids[0], signal.SIGKILL)
        with contextlib.suppress(Exception):  # the connection died with the worker
            pending.result(timeout=10)
    gates.open("e9003")  # the run that takes over goes straight through
    # Another worker takes the job over when its lease ends, runs it again, and sends once.
    wait_for(lambda: done(jobs, "9003"), timeout=30)
    assert sent_to(fake, "killed") == ["released e9003"]
    assert len(runs(record, "9003")) == 2
    assert pids[0] not in runs(record, "9003")[1:]
    assert service.process.poll() is None


def test_token_fetched_once_for_many_sends_across_workers_and_refreshed_on_42001(
    service, wecom, fake, gates, jobs
):
    before = fake.gettoken_calls
    msg_ids = [str(20_000 + index) for index in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(
                lambda i: wecom.send_text("hold e20", MsgId=msg_ids[i], FromUserName=f"tok{i}"),
                range(20),
            )
        )
    assert all(result.body == b"" for result in results)  # all late: all go by message/send
    gates.open("e20")  # 20 late answers at once, from both workers
    wait_for(lambda: done(jobs, *msg_ids), timeout=30)
    assert all(sent_to(fake, f"tok{i}") == ["released e20"] for i in range(20))
    assert fake.gettoken_calls - before <= 1  # 0 when an earlier test already cached it
    assert fake.gettoken_calls >= 1
    fetched = fake.gettoken_calls

    fake.fault("message/send", "token_expired")
    assert wecom.send_text("hold e9004", MsgId="9004", FromUserName="expired").body == b""
    gates.open("e9004")
    wait_for(lambda: done(jobs, "9004"), timeout=20)
    assert sent_to(fake, "expired") == ["released e9004"]
    assert fake.gettoken_calls == fetched + 1


def test_busy_and_rate_limit_faults_are_retried_and_succeed(wecom, fake, gates, jobs):
    fake.fault("message/send", "errcode", errcode=-1)
    fake.fault("message/send", "errcode", errcode=45009)
    fake.fault("message/send", "http", status=503)
    assert wecom.send_text("hold e9005", MsgId="9005", FromUserName="faults").body == b""
    gates.open("e9005")
    wait_for(lambda: done(jobs, "9005"), timeout=30)
    assert sent_to(fake, "faults") == ["released e9005"]
