"""微信客服 end to end: the real gunicorn with two gevent workers, the fake WeCom API on loopback,
customers writing in bursts while WeCom rings the doorbell concurrently."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator
from app.infra.store import JobState, SqliteStore
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import PROJECT_ROOT, LiveService
from tests.helpers import wait_for
from tests.settled import settled

pytestmark = pytest.mark.e2e

KF_SECRET = "kf-secret-e2e"
ACCOUNTS = ["wkLIVE00000001", "wkLIVE00000002", "wkLIVE00000003"]
WELCOME = "欢迎来到测试客服"


def service_env(fake: FakeWeCom, store: Path) -> dict[str, str]:
    return {
        "WECOM_KF_TOKEN": TOKEN,
        "WECOM_KF_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_KF_SECRET": KF_SECRET,
        "WECOM_KF_WELCOME": WELCOME,
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": f"sqlite:///{store}",
        "WECOM_LEASE_SECONDS": "2",
    }


def new_fake() -> FakeWeCom:
    return FakeWeCom(
        corp_id=CORP_ID, secret="app-secret-e2e", kf_secret=KF_SECRET, kf_accounts=ACCOUNTS
    )


def kf_sent(fake: FakeWeCom) -> list[dict]:
    return fake.sent("kf/send_msg")


def texts_by_customer(fake: FakeWeCom) -> dict[str, list[str]]:
    by_customer: dict[str, list[str]] = collections.defaultdict(list)
    for item in kf_sent(fake):
        by_customer[item["touser"]].append(item["body"]["text"]["content"])
    return by_customer


@pytest.fixture(scope="module")
def fake():
    with new_fake() as server:
        yield server


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kf") / "state.db"


@pytest.fixture(scope="module")
def service(fake, store_path):
    with LiveService(service_env(fake, store_path)) as live:
        yield live


@pytest.fixture(scope="module")
def jobs(service, store_path) -> Iterator[SqliteStore]:
    """The service's own store, read from the test."""
    store = SqliteStore(store_path)
    yield store
    store.close()


def doorbell(live: LiveService) -> Simulator:
    return Simulator(live.url + "/kf", TOKEN, AES_KEY, CORP_ID)


def ring(simulator: Simulator, token: str, open_kfid: str) -> None:
    result = simulator.send_kf_callback(token, open_kfid)
    assert (result.status, result.body) == (200, b""), result


def test_500_messages_in_bursts_are_answered_once_each_in_order(service, fake, jobs):
    simulator = doorbell(service)
    customers = [f"wmLIVE{c:04d}" for c in range(100)]  # five messages each: within WeCom's 5
    started = time.monotonic()
    rings = 0
    with ThreadPoolExecutor(12) as pool:
        for burst in range(10):
            turn, half = divmod(burst, 2)
            queued = collections.defaultdict(list)
            for index, user in enumerate(customers):
                if index % 2 == half:
                    text = f"{user} 第{turn}条"
                    queued[ACCOUNTS[index % 3]].append({"external_userid": user, "text": text})
            tokens = {
                kf: fake.enqueue_kf(open_kfid=kf, messages=msgs)["token"]
                for kf, msgs in queued.items()
            }
            # WeCom rings several times per burst (retries, one per message), concurrently.
            calls = [
                pool.submit(ring, simulator, tokens[kf], kf) for kf in tokens for _ in range(3)
            ]
            for call in calls:
                call.result(timeout=10)
            rings += len(calls)
            time.sleep(0.05)
        wait_for(lambda: len(kf_sent(fake)) >= 500, timeout=60, interval=0.1)
    elapsed = time.monotonic() - started
    wait_for(lambda: settled(jobs, ACCOUNTS), timeout=30)  # nothing more can come

    by_customer = texts_by_customer(fake)
    assert sum(len(texts) for texts in by_customer.values()) == 500
    for user in customers:
        assert by_customer[user] == [f"{user} 第{turn}条" for turn in range(5)], user
    pulls = len(fake.requests("kf/sync_msg"))
    rate = 500 / elapsed
    print(f"\n500 answered in {elapsed:.1f} s ({rate:.0f}/s); {rings} callbacks, {pulls} pulls")
    assert pulls < rings
    assert "Traceback" not in service.output()


def test_faults_welcome_and_refusal(service, fake, jobs, tmp_path):
    simulator = doorbell(service)
    kf = ACCOUNTS[0]
    before = len(kf_sent(fake))

    # An expired sync token: the pull goes on without it.
    expired = fake.enqueue_kf(
        open_kfid=kf, messages=[{"external_userid": "wmEXPIRED", "text": "迟到"}]
    )
    fake.advance(601)
    ring(simulator, expired["token"], kf)
    wait_for(lambda: texts_by_customer(fake)["wmEXPIRED"] == ["迟到"], timeout=15)
    assert any(r["errcode"] == 95007 for r in fake.requests("kf/sync_msg"))

    # Rate limits on both APIs are retried.
    fake.fault("kf/sync_msg", "errcode", errcode=45009)
    fake.fault("kf/send_msg", "errcode", errcode=45009)
    limited = fake.enqueue_kf(
        open_kfid=kf, messages=[{"external_userid": "wmLIMITED", "text": "稍等"}]
    )
    ring(simulator, limited["token"], kf)
    wait_for(lambda: texts_by_customer(fake)["wmLIMITED"] == ["稍等"], timeout=15)

    # A closed session refuses the answer (95013): one try, recorded, not retried.
    closed = fake.enqueue_kf(
        open_kfid=kf, messages=[{"external_userid": "wmCLOSED", "text": "还在吗"}]
    )
    fake.set_session(kf, "wmCLOSED", 4)
    ring(simulator, closed["token"], kf)
    wait_for(lambda: "95013" in service.output(), timeout=15)
    wait_for(lambda: settled(jobs, [kf]), timeout=15)  # the refusal is final: no retry comes
    refused = [r for r in fake.requests("kf/send_msg") if r["body"]["touser"] == "wmCLOSED"]
    assert [r["errcode"] for r in refused] == [95013]

    # enter_session: the welcome goes with its welcome_code.
    entered = fake.enqueue_kf(
        open_kfid=kf, messages=[{"external_userid": "wmNEW", "event": "enter_session"}]
    )
    ring(simulator, entered["token"], kf)
    welcome = wait_for(lambda: fake.sent("kf/send_msg_on_event"), timeout=15)
    assert (welcome[0]["touser"], welcome[0]["body"]["text"]["content"]) == ("wmNEW", WELCOME)
    assert len(kf_sent(fake)) == before + 2

    # The simulator's kf commands: enqueue, ring, print the answers.
    env = dict(service.env) | {"WECOM_STORE": f"sqlite:///{tmp_path / 'cli.db'}"}
    cli = subprocess.run(
        [
            sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "--url", service.url,
            "kf", "text", "你好", "--open-kfid", kf, "--user", "wmCLI", "--wait", "10",
        ],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == "你好,这是测试机器人"


def test_kill_mid_pull_and_restart_loses_none_and_duplicates_none(tmp_path):
    store = tmp_path / "state.db"
    with new_fake() as fake:
        env = service_env(fake, store)
        first = LiveService(env).start()
        try:
            simulator = doorbell(first)
            fake.fault("kf/send_msg", "delay", seconds=0.15, count=400)  # answers take a while
            expected: dict[str, list[str]] = {}
            for index, kf in enumerate(ACCOUNTS):
                users = [f"wmK{index}{c:02d}" for c in range(10)]
                messages = [
                    {"external_userid": u, "text": f"{u}-{t}"} for t in range(5) for u in users
                ]
                expected.update({u: [f"{u}-{t}" for t in range(5)] for u in users})
                ring(simulator, fake.enqueue_kf(open_kfid=kf, messages=messages)["token"], kf)
            wait_for(lambda: len(kf_sent(fake)) >= 30, timeout=20)
            # More customers write; their pulls are slow, and the service dies during them.
            fake.fault("kf/sync_msg", "delay", seconds=2.0, count=3)
            for index, kf in enumerate(ACCOUNTS):
                users = [f"wmL{index}{c:02d}" for c in range(4)]
                messages = [
                    {"external_userid": u, "text": f"{u}-{t}"} for t in range(3) for u in users
                ]
                expected.update({u: [f"{u}-{t}" for t in range(3)] for u in users})
                ring(simulator, fake.enqueue_kf(open_kfid=kf, messages=messages)["token"], kf)
            # Kill once a slow pull is under way.
            wait_for(lambda: any(r["fault"] == "delay" for r in fake.requests("kf/sync_msg")))
            answered_before_kill = len(kf_sent(fake))
            first.kill()
        finally:
            first.close()
        assert answered_before_kill < 186, "everything was answered before the kill"
        fake.state.clear_faults()
        pulls_before_restart = len(fake.requests("kf/sync_msg"))

        with LiveService(env) as second:  # no new callback: the sweep and recovery resume
            total = sum(len(texts) for texts in expected.values())
            wait_for(lambda: len(kf_sent(fake)) >= total, timeout=40, interval=0.1)
            observed = SqliteStore(store)
            try:  # the dead workers' leases ran out and were taken over: nothing more can come
                wait_for(lambda: settled(observed, ACCOUNTS), timeout=30)
            finally:
                observed.close()
            by_customer = texts_by_customer(fake)
            assert sum(len(texts) for texts in by_customer.values()) == total
            for user, texts in expected.items():
                assert sorted(by_customer[user]) == texts, (
                    user
                )  # each once; a recovered batch may reorder
            output = second.output()
        print(f"\n{answered_before_kill} of {total} answered before the kill; the rest after")
        sqlite = SqliteStore(store)
        try:
            assert sqlite.list_jobs(JobState.DEAD) == []
            assert [j.key for j in sqlite.list_jobs(JobState.OUTBOX)] == []
        finally:
            sqlite.close()
        # The dead workers' pulls were resumed without a new callback, and sends they had in
        # flight (taken by WeCom, then the process died) were not repeated.
        assert len(fake.requests("kf/sync_msg")) > pulls_before_restart
        assert "as a repeat (errcode 40058)" in output
