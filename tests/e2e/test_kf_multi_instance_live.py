"""微信客服 across two instances (each its own gunicorn master with 2 gevent workers) sharing one
real redis-server, with WeCom's doorbells (kf_msg_or_event callbacks) arriving at both: each
customer message is answered once (kf/send_msg at the fake WeCom API), in order per customer.

The cluster is the one of tests/e2e/test_multi_instance_live.py (without nginx: the doorbells go
to each instance directly, so the test decides which instance each one reaches), with the kf
endpoint mounted and tests/e2e/handlers_kf_multi.py recording which process ran each handler.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.store import Store, open_store
from app.jobs.kf_puller import lock_name
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.e2e.test_kf_live import ACCOUNTS, KF_SECRET, doorbell, kf_sent, ring, texts_by_customer
from tests.e2e.test_multi_instance_live import SECRET, Cluster, running_cluster
from tests.helpers import GATES_VARIABLE, Gates, wait_for
from tests.settled import settled

pytestmark = pytest.mark.e2e


@dataclass
class KfCluster:
    cluster: Cluster
    fake: FakeWeCom
    gates: Gates
    store: Store  # the instances' Redis store, read by the test

    def instance_of(self, pid: int) -> str:
        """ "a" or "b": whose worker ``pid`` is."""
        for name, live in (("a", self.cluster.a), ("b", self.cluster.b)):
            if pid in live.worker_pids():
                return name
        raise AssertionError(f"pid {pid} is no worker of either instance")

    def live(self, name: str) -> LiveService:
        return self.cluster.a if name == "a" else self.cluster.b

    def settled(self) -> bool:
        return settled(self.store, ACCOUNTS)

    def pull_locked(self, open_kfid: str) -> bool:
        """Whether an instance holds the account's pull lock (the key layout of redis.py)."""
        with self.cluster.redis.client() as client:
            return bool(client.exists(f"{self.cluster.prefix}lock:{lock_name(open_kfid)}"))


@pytest.fixture(scope="module")
def kf_cluster(tmp_path_factory) -> Iterator[KfCluster]:
    base = tmp_path_factory.mktemp("kf-multi")
    gates = Gates(base / "gates")
    kf_env = {
        "WECOM_KF_TOKEN": TOKEN,
        "WECOM_KF_AES_KEY": AES_KEY,
        "WECOM_KF_SECRET": KF_SECRET,
        "WECOM_KF_HANDLERS": "tests.e2e.handlers_kf_multi",
        GATES_VARIABLE: str(gates.folder),
    }
    fake = FakeWeCom(
        corp_id=CORP_ID, secret=SECRET, agent_id=1000002, kf_secret=KF_SECRET, kf_accounts=ACCOUNTS
    )
    with fake, running_cluster(base, fake, nginx=False, extra_env=kf_env) as cluster:
        store = open_store(cluster.redis.url, prefix=cluster.prefix)
        try:
            yield KfCluster(cluster, fake, gates, store)
        finally:
            store.close()
        for live in (cluster.a, cluster.b):
            assert "Traceback" not in live.output()


def wait_sent(fake: FakeWeCom, count: int, timeout: float) -> None:
    """Until at least ``count`` messages went out: the fake's long poll, no sleeps."""
    reached = fake.wait_sent(count - 1, timeout)
    assert reached >= count, f"{reached} of {count} messages sent within {timeout} s"


def test_doorbell_at_the_other_instance_goes_to_the_one_pulling(kf_cluster: KfCluster) -> None:
    """While one instance pulls an account (a handler holds a customer's lane), a doorbell at
    the other instance only leaves a wake: the puller takes the new messages in, answers the
    free customer at once and the held customer's next message only after the held one."""
    cluster, fake, kf = kf_cluster.cluster, kf_cluster.fake, ACCOUNTS[0]
    first = fake.enqueue_kf(
        open_kfid=kf, messages=[{"external_userid": "wmHOLD", "text": "hold g1"}]
    )
    ring(doorbell(cluster.a), first["token"], kf)
    held = first["msgids"][0]
    pids = wait_for(lambda: cluster.runs(held), timeout=10)
    puller = kf_cluster.instance_of(pids[0])  # a, unless b's sweep took the account first
    other = "b" if puller == "a" else "a"

    more = fake.enqueue_kf(
        open_kfid=kf,
        messages=[
            {"external_userid": "wmHOLD", "text": "wmHOLD 2"},
            {"external_userid": "wmFREE", "text": "wmFREE 1"},
            {"external_userid": "wmFREE", "text": "wmFREE 2"},
        ],
    )
    for _ in range(2):
        ring(doorbell(kf_cluster.live(other)), more["token"], kf)
    wait_sent(fake, 2, timeout=10)
    assert texts_by_customer(fake) == {"wmFREE": ["wmFREE 1", "wmFREE 2"]}  # wmHOLD waits
    assert kf_cluster.pull_locked(kf)  # the puller keeps the account until its lanes are idle

    kf_cluster.gates.open("g1")
    wait_sent(fake, 4, timeout=10)
    wait_for(kf_cluster.settled, timeout=10)
    assert texts_by_customer(fake) == {
        "wmFREE": ["wmFREE 1", "wmFREE 2"],
        "wmHOLD": ["held g1", "wmHOLD 2"],
    }
    for msgid in first["msgids"] + more["msgids"]:
        assert [kf_cluster.instance_of(pid) for pid in cluster.runs(msgid)] == [puller], msgid


def test_bursts_rung_at_both_instances_are_answered_once_each_in_order(
    kf_cluster: KfCluster,
) -> None:
    """Five bursts of one message per customer, each account's doorbells rung at both
    instances at once. After the second burst everything settles and the pull locks are free;
    the third burst's first doorbell goes to the instance that did not answer the account
    before, so customers get their next answers from the other instance, still in order."""
    cluster, fake = kf_cluster.cluster, kf_cluster.fake
    customers = {kf: [f"wmB{i}{c:02d}" for c in range(15)] for i, kf in enumerate(ACCOUNTS)}
    turns = 5  # one message per customer and burst: within WeCom's five answers
    before = len(kf_sent(fake))
    total = turns * sum(len(users) for users in customers.values())
    customer_of: dict[str, str] = {}  # msgid -> customer
    last_of: dict[str, str] = {}  # account -> msgid of its latest message
    rings = 0

    def burst(turn: int, pool: ThreadPoolExecutor, first_at: dict[str, str]) -> None:
        nonlocal rings
        tokens = {}
        for kf, users in customers.items():
            messages = [{"external_userid": u, "text": f"{u} 第{turn}条"} for u in users]
            queued = fake.enqueue_kf(open_kfid=kf, messages=messages)
            tokens[kf] = queued["token"]
            customer_of.update(zip(queued["msgids"], users, strict=True))
            last_of[kf] = queued["msgids"][-1]
        for kf in ACCOUNTS:  # the first doorbell, then more at both at once (WeCom's retries)
            ring(doorbell(kf_cluster.live(first_at[kf])), tokens[kf], kf)
        calls = [
            pool.submit(ring, doorbell(live), tokens[kf], kf)
            for kf in ACCOUNTS
            for live in (cluster.a, cluster.b)
        ]
        for call in calls:
            call.result(timeout=10)
        rings += len(ACCOUNTS) + len(calls)

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        for turn in range(2):
            burst(turn, pool, {kf: "ab"[(turn + i) % 2] for i, kf in enumerate(ACCOUNTS)})
        wait_sent(fake, before + 2 * total // turns, timeout=20)
        wait_for(kf_cluster.settled, timeout=10)
        wait_for(lambda: not any(kf_cluster.pull_locked(kf) for kf in ACCOUNTS), timeout=10)
        answered_by = {kf: kf_cluster.instance_of(cluster.runs(last_of[kf])[0]) for kf in ACCOUNTS}
        handover = {kf: "b" if by == "a" else "a" for kf, by in answered_by.items()}
        for turn in range(2, turns):
            burst(turn, pool, handover)
    wait_sent(fake, before + total, timeout=20)
    elapsed = time.monotonic() - started
    wait_for(kf_cluster.settled, timeout=10)  # nothing more can come

    by_customer = texts_by_customer(fake)
    for users in customers.values():
        for user in users:
            assert by_customer[user] == [f"{user} 第{turn}条" for turn in range(turns)], user
    assert len(kf_sent(fake)) == before + total
    ran_on: dict[str, str] = {}  # msgid -> instance
    for msgid in customer_of:
        pids = cluster.runs(msgid)
        assert len(pids) == 1, (msgid, pids)  # each handler ran once, on one instance
        ran_on[msgid] = kf_cluster.instance_of(pids[0])
    by_instance = collections.Counter(ran_on.values())
    both = {customer_of[m] for m in ran_on if ran_on[m] == "a"}
    both &= {customer_of[m] for m in ran_on if ran_on[m] == "b"}
    # An account's lock was free when its third burst rang at the other instance first: that
    # instance took the account over (unless the first one's 1 s sweep slipped into the
    # moment between writing the wake and taking the lock, for all three accounts at once).
    assert both, "no customer was answered by both instances"
    pulls = len(fake.requests("kf/sync_msg"))
    print(
        f"\n{total} kf messages answered in {elapsed:.2f} s, {by_instance['a']} by instance a "
        f"and {by_instance['b']} by b ({len(both)} customers answered by both); {rings} "
        f"doorbells, {pulls} sync_msg calls in all"
    )
