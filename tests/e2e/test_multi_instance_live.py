"""Two service instances (each its own gunicorn master with 2 gevent workers) share one real
redis-server, behind the real nginx running deploy/nginx.conf (TLS on a throwaway certificate),
answering through the fake WeCom API: the nginx configuration itself, one token for both
instances, a retry on the other instance, Redis stalled and restarted under load, a whole
instance killed.

Short budgets keep it quick: a 1 s reply deadline and 2 s leases. The tests run in file order
and the last one kills instance A.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator, requests_transport
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.helpers import wait_for
from tests.servers import NginxServer, RedisServer, start_redis, unique_prefix

pytestmark = pytest.mark.e2e

SECRET = "multi-instance-secret"
LEASE = 2.0


class Cluster:
    def __init__(
        self,
        redis_server: RedisServer,
        prefix: str,
        fake: FakeWeCom,
        record: Path,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.redis, self.prefix, self.fake, self.record = redis_server, prefix, fake, record
        env = {
            "WECOM_TOKEN": TOKEN,
            "WECOM_AES_KEY": AES_KEY,
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_SECRET": SECRET,
            "WECOM_AGENT_ID": "1000002",
            "WECOM_API_BASE": fake.base_url,
            "WECOM_STORE": redis_server.url,
            "WECOM_REDIS_PREFIX": prefix,
            "WECOM_HANDLERS": "tests.e2e.handlers_multi",
            "WECOM_REPLY_DEADLINE": "1",
            "WECOM_LEASE_SECONDS": str(LEASE),
            "WECOM_TEST_RECORD": str(record),
            "WECOM_LOG_LEVEL": "WARNING",
            "GUNICORN_GRACEFUL_TIMEOUT": "3",  # open keep-alive connections must not hold it up
            **(extra_env or {}),
        }
        self.a = LiveService(env, workers=2)
        self.b = LiveService(env, workers=2)
        self.nginx: NginxServer | None = None
        self.sessions: list[requests.Session] = []

    def wecom(self, url: str) -> Simulator:
        session = requests.Session()
        self.sessions.append(session)
        session.trust_env = False
        if self.nginx is not None:
            session.verify = str(self.nginx.certificate)
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        transport = requests_transport(timeout=15, session=session)
        return Simulator(url + "/", TOKEN, AES_KEY, CORP_ID, transport=transport)

    def runs(self, msg_id: str) -> list[int]:
        """The pids that ran the handler for ``msg_id``."""
        if not self.record.exists():
            return []
        lines = [line.split() for line in self.record.read_text().splitlines()]
        return [int(pid) for key, pid in lines if key == msg_id]

    def sent_to(self, user: str) -> list[str]:
        return [
            item["body"]["text"]["content"]
            for item in self.fake.sent("message/send")
            if item["body"]["touser"] == user
        ]

    def job_state(self, msg_id: str) -> str | None:
        with self.redis.client() as client:
            return client.hget(f"{self.prefix}{{jobs}}:job:app:msg:{msg_id}", "state")


@contextmanager
def running_cluster(
    base: Path,
    fake: FakeWeCom,
    *,
    nginx: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Its own redis-server, both instances started at once, nginx in front unless told not."""
    redis_server = start_redis(base / "redis")
    try:
        built = Cluster(redis_server, unique_prefix("m"), fake, base / "runs.txt", extra_env)
        try:
            with ThreadPoolExecutor(2) as pool:  # start both instances at once
                list(pool.map(LiveService.start, [built.a, built.b]))
            if nginx:
                built.nginx = NginxServer(base / "nginx", [built.a.port, built.b.port]).start()
            yield built
        finally:
            for session in built.sessions:
                session.close()
            if built.nginx is not None:
                built.nginx.stop()
            for live in (built.a, built.b):
                live.stop()
                live.log.close()
    finally:
        redis_server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with (
        FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as fake,
        running_cluster(tmp_path_factory.mktemp("multi"), fake) as built,
    ):
        yield built


def test_nginx_runs_the_shipped_config_over_tls(cluster: Cluster) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    checked = nginx.check_config()
    assert checked.returncode == 0, checked.stderr
    assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr
    wecom = cluster.wecom(nginx.url)  # verifies the certificate
    assert wecom.verify_url()
    answers = [wecom.send_text(f"经 nginx {i}", MsgId=str(20_000 + i)).reply for i in range(4)]
    assert [a["Content"] if a else None for a in answers] == [f"经 nginx {i}" for i in range(4)]
    assert {pid for i in range(4) for pid in cluster.runs(str(20_000 + i))} & set(
        cluster.b.worker_pids()
    ), "nginx sent nothing to the second instance"
    plain = requests.get(nginx.http_url + "/x?y=1", allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://127.0.0.1/x?y=1"  # $host carries no port
    assert "[error]" not in nginx.log()


def test_one_gettoken_for_twenty_late_answers_on_both_instances(cluster: Cluster) -> None:
    assert cluster.fake.gettoken_calls == 0
    targets = [cluster.a, cluster.b] * 10

    def one(index: int):
        wecom = cluster.wecom(targets[index].url)
        return wecom.send_text("sleep 1.2", MsgId=str(30_000 + index), FromUserName=f"tok{index}")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r.status for r in results] == [200] * 20
    assert all(r.body == b"" for r in results)  # past the 1 s deadline: the API answers
    wait_for(lambda: all(cluster.sent_to(f"tok{i}") for i in range(20)), timeout=30)
    assert all(cluster.sent_to(f"tok{i}") == ["slept 1.2"] for i in range(20))
    assert cluster.fake.gettoken_calls == 1

    cluster.fake.fault("message/send", "token_expired")  # the shared token is now refused
    cluster.wecom(cluster.b.url).send_text("sleep 1.2", MsgId="30100", FromUserName="expired")
    wait_for(lambda: cluster.sent_to("expired"), timeout=20)
    assert cluster.fake.gettoken_calls == 2


def test_retry_on_the_other_instance_runs_once_and_answers_once(cluster: Cluster) -> None:
    on_a, on_b = cluster.wecom(cluster.a.url), cluster.wecom(cluster.b.url)
    fields = on_a.message_fields("text", Content="sleep 1.5", MsgId="31000", FromUserName="retry")
    first = on_a.send_fields(fields)  # empty at the 1 s deadline, like a timeout to WeCom
    again = on_b.send_fields(fields)  # WeCom's retry lands on instance B
    assert (first.status, first.body, again.status, again.body) == (200, b"", 200, b"")
    wait_for(lambda: cluster.job_state("31000") == "done", timeout=20)
    assert cluster.sent_to("retry") == ["slept 1.5"]
    assert len(cluster.runs("31000")) == 1
    assert cluster.runs("31000")[0] in cluster.a.worker_pids()


def test_stalled_redis_gets_answers_or_503s(cluster: Cluster) -> None:
    """Redis stalls (1.5 s): each callback gets its answer or a 503 (WeCom then retries)."""
    wecom = cluster.wecom(cluster.nginx.url)  # type: ignore[union-attr]
    sleeper = cluster.redis.stall(1.5)
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda i: wecom.send_text(f"stall {i}", MsgId=str(32_000 + i)), range(4))
            )
    finally:
        sleeper.join(30)
    assert {r.status for r in results} <= {200, 503}
    for result in results:
        assert result.status == 503 or result.reply is not None
    wait_for(lambda: requests.get(cluster.a.url + "/healthz", timeout=10).ok, timeout=10)
    slowest = max(r.elapsed for r in results)
    print(f"redis stalled 1.5 s: statuses {[r.status for r in results]}, slowest {slowest:.2f} s")


def test_redis_restart_under_load(cluster: Cluster) -> None:
    """503 while Redis is down, no accepted callback lost, back without any worker restart."""
    workers_before = sorted(cluster.a.worker_pids() + cluster.b.worker_pids())
    wecom = cluster.wecom(cluster.nginx.url)  # type: ignore[union-attr]
    outcomes: list[tuple[str, int, float, float]] = []  # (msg id, status, started, finished)
    stop = threading.Event()

    def load(worker: int) -> None:
        for n in range(1000):  # bounded in count, and in time by the test below
            if stop.is_set():
                return
            msg_id = str(100_000 + worker * 1000 + n)
            started = time.monotonic()
            try:
                status = wecom.send_text(f"load {msg_id}", MsgId=msg_id).status
            except Exception:
                status = 0
            outcomes.append((msg_id, status, started, time.monotonic()))
            time.sleep(0.01)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(o[1] == 200 for o in outcomes) >= 20, timeout=20)
        cluster.redis.kill()  # a crash: nothing acknowledged may be lost (appendonly)
        down = time.monotonic()
        wait_for(lambda: sum(o[1] == 503 and o[2] > down for o in outcomes) >= 10, timeout=20)
        health = requests.get(cluster.a.url + "/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "store unavailable"
        up = time.monotonic()
        cluster.redis.start()
        wait_for(lambda: sum(o[1] == 200 and o[2] > up for o in outcomes) >= 20, timeout=20)
        recovered = min(o[3] for o in outcomes if o[1] == 200 and o[2] > up) - up
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    # Callbacks sent and answered while Redis was down: refused with 503, so WeCom retries them.
    # (One still in flight when Redis came back may rightly succeed on its reconnect.)
    during = [
        (status, end - start) for _, status, start, end in outcomes if down < start and end < up
    ]
    assert during and {status for status, _ in during} == {503}
    assert requests.get(cluster.b.url + "/healthz", timeout=10).status_code == 200
    accepted = [msg_id for msg_id, status, _, _ in outcomes if status == 200]
    assert all(cluster.job_state(msg_id) == "passive" for msg_id in accepted)
    assert sorted(cluster.a.worker_pids() + cluster.b.worker_pids()) == workers_before
    slowest_503 = max(took for _, took in during)
    print(
        f"redis restart: {len(during)} callbacks answered 503 while down (slowest "
        f"{slowest_503:.3f} s); the first 200 {recovered:.2f} s after the restart began; "
        f"{len(accepted)} accepted, none lost"
    )


def test_killed_instance_leaves_its_deferred_work_to_the_other(cluster: Cluster) -> None:
    on_a = cluster.wecom(cluster.a.url)
    msg_ids = [str(50_000 + i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(
            pool.map(lambda m: on_a.send_text("hold", MsgId=m, FromUserName=f"k{m}"), msg_ids)
        )
    assert [(r.status, r.body) for r in results] == [(200, b"")] * 3
    assert all(cluster.job_state(m) == "deferred" for m in msg_ids)
    a_workers = set(cluster.a.worker_pids())
    assert all(set(cluster.runs(m)) <= a_workers for m in msg_ids)

    cluster.a.kill()  # SIGKILL to the process group: master and both workers
    killed = time.monotonic()
    wait_for(lambda: all(cluster.sent_to(f"k{m}") for m in msg_ids), timeout=30, interval=0.1)
    delivered = time.monotonic() - killed
    wait_for(lambda: all(cluster.job_state(m) == "done" for m in msg_ids), timeout=10)
    assert all(cluster.sent_to(f"k{m}") == ["held"] for m in msg_ids)
    b_workers = set(cluster.b.worker_pids())
    for m in msg_ids:
        first, second = cluster.runs(m)
        assert first in a_workers and second in b_workers

    # nginx skips the dead instance: callbacks through it still get their answer.
    wecom = cluster.wecom(cluster.nginx.url)  # type: ignore[union-attr]
    answers = [wecom.send_text(f"after {i}", MsgId=str(51_000 + i)) for i in range(4)]
    assert [a.reply["Content"] for a in answers if a.reply] == [f"after {i}" for i in range(4)]
    print(f"instance killed: its 3 deferred answers delivered by the other {delivered:.2f} s later")
