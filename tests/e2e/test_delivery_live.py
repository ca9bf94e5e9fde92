"""End to end on a real gunicorn with gevent workers and the fake WeCom API: the reply window,
retries, late delivery through message/send, worker death, the shared access_token."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator, requests_transport
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

SECRET = "e2e-app-secret"


@pytest.fixture(scope="module")
def fake():
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as server:
        yield server


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("record") / "runs.txt"


@pytest.fixture(scope="module")
def service(fake, record, tmp_path_factory):
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": f"sqlite:///{tmp_path_factory.mktemp('store') / 'state.db'}",
        "WECOM_HANDLERS": "tests.handlers_slow",
        "WECOM_LEASE_SECONDS": "3",
        "WECOM_TEST_RECORD": str(record),
    }
    with LiveService(env, workers=2) as live:
        yield live


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


def test_ten_second_handler_answered_empty_in_budget_then_sent_once(wecom, fake, record):
    result = wecom.send_text("sleep 10", MsgId="9001", FromUserName="slow10")
    assert result.status == 200 and result.body == b""
    assert result.elapsed < 4.5
    wait_for(lambda: sent_to(fake, "slow10"), timeout=20)
    time.sleep(1)
    assert sent_to(fake, "slow10") == ["slept 10"]
    assert len(runs(record, "9001")) == 1


def test_two_hundred_concurrent_two_second_handlers_all_answered_in_time(service):
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=200))
    wecom = Simulator(
        service.url + "/",
        TOKEN,
        AES_KEY,
        CORP_ID,
        transport=requests_transport(timeout=15, session=session),
    )

    def one(index: int):
        return wecom.send_text("sleep 2", MsgId=str(10_000 + index), FromUserName=f"c{index}")

    started = time.monotonic()
    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    took = time.monotonic() - started
    assert all(r.status == 200 for r in results)
    slowest = max(r.elapsed for r in results)
    assert slowest < 5.0, f"slowest answer took {slowest:.2f} s"
    # Each got its passive reply (2 s is inside the 4 s budget).
    assert all(r.reply and r.reply["Content"] == "slept 2" for r in results)
    print(f"200 x 2 s handlers: all answered, slowest {slowest:.2f} s, batch {took:.2f} s")


def test_callback_sent_three_times_runs_once_and_answers_once(wecom, fake, record):
    fields = wecom.message_fields("text", Content="sleep 6", MsgId="9002", FromUserName="retry3")
    first = wecom.send_fields(fields)  # answered empty at the deadline, like a timeout to WeCom
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: wecom.send_fields(fields), range(2)))
    assert [r.body for r in [first, *again]] == [b"", b"", b""]
    wait_for(lambda: sent_to(fake, "retry3"), timeout=20)
    time.sleep(1)
    assert sent_to(fake, "retry3") == ["slept 6"]
    assert len(runs(record, "9002")) == 1


def test_worker_killed_mid_handler_does_not_lose_the_message(service, wecom, fake, record):
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(wecom.send_text, "sleep 3", MsgId="9003", FromUserName="killed")
        pids = wait_for(lambda: runs(record, "9003"), timeout=10)
        os.kill(pids[0], signal.SIGKILL)
        with contextlib.suppress(Exception):  # the connection died with the worker
            pending.result(timeout=10)
    # Another worker takes the job over when its lease ends, runs it again, and sends once.
    wait_for(lambda: sent_to(fake, "killed"), timeout=30, interval=0.1)
    time.sleep(1)
    assert sent_to(fake, "killed") == ["slept 3"]
    assert len(runs(record, "9003")) == 2
    assert pids[0] not in runs(record, "9003")[1:]
    assert service.process.poll() is None


def test_token_fetched_once_for_many_sends_across_workers_and_refreshed_on_42001(
    service, wecom, fake
):
    before = fake.gettoken_calls
    with ThreadPoolExecutor(20) as pool:
        list(
            pool.map(
                lambda i: wecom.send_text(
                    "sleep 4.5", MsgId=str(20_000 + i), FromUserName=f"tok{i}"
                ),
                range(20),
            )
        )
    wait_for(lambda: all(sent_to(fake, f"tok{i}") for i in range(20)), timeout=30)
    assert fake.gettoken_calls - before <= 1  # 0 when an earlier test already cached it
    assert fake.gettoken_calls >= 1
    fetched = fake.gettoken_calls

    fake.fault("message/send", "token_expired")
    wecom.send_text("sleep 4.5", MsgId="9004", FromUserName="expired")
    wait_for(lambda: sent_to(fake, "expired"), timeout=20)
    assert fake.gettoken_calls == fetched + 1


def test_busy_and_rate_limit_faults_are_retried_and_succeed(wecom, fake):
    fake.fault("message/send", "errcode", errcode=-1)
    fake.fault("message/send", "errcode", errcode=45009)
    fake.fault("message/send", "http", status=503)
    wecom.send_text("sleep 4.5", MsgId="9005", FromUserName="faults")
    wait_for(lambda: sent_to(fake, "faults"), timeout=30)
    time.sleep(0.5)
    assert sent_to(fake, "faults") == ["slept 4.5"]
