"""What only the Redis store has: a real redis-server shared by processes and greenlets, TTLs,
key prefixes, a server restart, and clear errors for a bad URL, password or host.

The semantics every store shares are in test_store.py, which runs against Redis too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from app.infra.store import JobState, open_store
from app.infra.store.redis import GRACE, RedisStore
from tests.helpers import PROJECT_ROOT as ROOT
from tests.servers import (
    REDIS_PASSWORD,
    RedisServer,
    free_port,
    make_certificate,
    start_redis,
    unique_prefix,
    wait_until,
)

from . import _workers
from .test_sqlite_concurrency import race

T = 1_000_000.0


@pytest.fixture
def store(redis_server: RedisServer):
    opened = RedisStore.from_url(redis_server.url, prefix=unique_prefix())
    yield opened
    opened.close()


def keys_of(server: RedisServer, prefix: str) -> set[str]:
    """Every key under ``prefix`` (SCAN: fine in a test, never on the service's paths)."""
    with server.client() as client:
        return set(client.scan_iter(match=f"{prefix}*", count=1000))


# -- several processes on one Redis -------------------------------------------------------------
def test_processes_claim_each_key_once(redis_server: RedisServer) -> None:
    spec = f"{redis_server.url} {unique_prefix()}"
    keys = [f"msg-{i}" for i in range(200)]

    reports = race(_workers.claim_keys, spec, keys)

    created = Counter(key for keys_created in reports for key in keys_created)
    assert set(created) == set(keys)
    assert max(created.values()) == 1
    store = _workers.open_spec(spec)
    try:
        for worker, keys_created in enumerate(reports):
            for key in keys_created:
                assert store.get_job(key).owner == f"w{worker}"  # type: ignore[union-attr]
    finally:
        store.close()


def test_processes_take_over_each_expired_job_once(redis_server: RedisServer) -> None:
    spec = f"{redis_server.url} {unique_prefix()}"
    store = _workers.open_spec(spec)
    now = time.time()
    keys = [f"job-{i}" for i in range(300)]
    for i, key in enumerate(keys):
        store.claim_job(key, "app", "{}", "dead-worker", now - 1000 + i, now - 2000)
    for key in keys[::3]:
        store.update_job(key, expect_states=(JobState.RUNNING,), state=JobState.OUTBOX, now=now)

    reports = race(_workers.claim_expired, spec, 3)

    handed_out = Counter(key for taken in reports for key in taken)
    assert set(handed_out) == set(keys)
    assert max(handed_out.values()) == 1
    for worker, taken in enumerate(reports):
        for key in taken:
            assert store.get_job(key).owner == f"w{worker}"  # type: ignore[union-attr]
    store.close()


# -- expiry -------------------------------------------------------------------------------------
def test_finished_jobs_expire_by_ttl_but_dead_and_active_ones_do_not(
    redis_server: RedisServer,
) -> None:
    prefix = unique_prefix()
    store = RedisStore(redis_server.client(), prefix=prefix, finished_ttl=0.3)
    for key in ("passive", "done", "dead", "outbox", "running"):
        store.claim_job(key, "app", "{}", "w1", T + 30, T)
    for key, state in [
        ("passive", JobState.PASSIVE),
        ("done", JobState.DONE),
        ("dead", JobState.DEAD),
        ("outbox", JobState.OUTBOX),
    ]:
        assert store.update_job(key, expect_states=(JobState.RUNNING,), state=state, now=T)
    with redis_server.client() as client:
        ttl = {k: client.pttl(store._job_key(k)) for k in ("passive", "done", "dead", "outbox")}
    assert 0 < ttl["passive"] <= 300 and 0 < ttl["done"] <= 300
    assert ttl["dead"] == ttl["outbox"] == -1  # no expiry

    wait_until(lambda: store.get_job("done") is None, 10, "the done job to expire")
    wait_until(lambda: store.get_job("passive") is None, 10, "the passive job to expire")
    assert store.list_jobs(JobState.DONE) == []
    assert store.purge_jobs(T + 10**9) == 0  # nothing left to delete, only index entries
    created, job = store.claim_job("done", "app", "{}", "w2", T + 30, T + 5)
    assert created and job.owner == "w2"  # the dedup record is gone: the key is new again
    assert [j.key for j in store.list_jobs(JobState.RUNNING)] == ["running", "done"]
    assert {j.key for j in store.claim_expired("w3", T + 31, T + 60, 10)} == {
        "done",
        "running",
        "outbox",
    }
    assert store.get_job("dead") is not None
    store.close()


def test_a_job_back_from_a_final_state_stops_expiring(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.client(), prefix=unique_prefix(), finished_ttl=60)
    store.claim_job("k", "app", "{}", "w1", T + 30, T)
    store.update_job("k", expect_states=(JobState.RUNNING,), state=JobState.DEAD, now=T)
    store.update_job("k", expect_states=(JobState.DEAD,), state=JobState.DONE, now=T)
    with redis_server.client() as client:
        assert client.pttl(store._job_key("k")) > 0
        store.update_job("k", expect_states=(JobState.DONE,), state=JobState.OUTBOX, now=T)
        assert client.pttl(store._job_key("k")) == -1
    assert [j.key for j in store.claim_expired("w2", T + 31, T + 60, 5)] == ["k"]
    store.close()


def test_values_and_locks_are_dropped_by_redis_after_their_expiry(
    redis_server: RedisServer, store: RedisStore
) -> None:
    now = time.time()
    store.set_value("token", "abc", expires_at=now + 100)
    store.set_value("cursor", "c1")
    assert store.acquire_lock("refresh", "w1", now + 50, now)
    with redis_server.client() as client:
        token_ttl = client.pttl(f"{store.prefix}value:token") / 1000
        lock_ttl = client.pttl(f"{store.prefix}lock:refresh") / 1000
        assert client.pttl(f"{store.prefix}value:cursor") == -1
    assert 100 < token_ttl <= 100 + GRACE
    assert 50 < lock_ttl <= 50 + GRACE
    assert store.get_value("token", now + 100) is None  # logically expired at once
    store.set_value("token", "def")  # a value without expiry loses the old TTL
    with redis_server.client() as client:
        assert client.pttl(f"{store.prefix}value:token") == -1


def test_claim_expired_skips_index_entries_whose_job_is_gone(
    redis_server: RedisServer, store: RedisStore
) -> None:
    for key in ("a", "b", "c", "d"):
        store.claim_job(key, "app", "{}", "w1", T + 1, T)
    with redis_server.client() as client:
        client.delete(store._job_key("a"), store._job_key("b"))  # as if removed by hand
    assert [j.key for j in store.claim_expired("w2", T + 2, T + 60, 2)] == ["c", "d"]
    # A new lease that is already over (a clock far behind) still hands each job out once.
    assert [j.key for j in store.claim_expired("w3", T + 100, T + 70, 5)] == ["c", "d"]


# -- prefixes -----------------------------------------------------------------------------------
def test_prefixes_keep_services_apart(redis_server: RedisServer) -> None:
    prefix_a, prefix_b = unique_prefix("a"), unique_prefix("b")
    a = RedisStore.from_url(redis_server.url, prefix=prefix_a)
    b = RedisStore.from_url(redis_server.url, prefix=prefix_b)
    assert a.claim_job("m1", "app", "{}", "wa", T + 30, T)[0]
    assert b.claim_job("m1", "app", "{}", "wb", T + 30, T)[0]
    a.set_value("token", "A")
    b.set_value("token", "B")
    assert a.acquire_lock("l", "wa", T + 10, T)
    assert b.acquire_lock("l", "wb", T + 10, T)
    assert (a.get_value("token", T), b.get_value("token", T)) == ("A", "B")

    assert [j.owner for j in a.claim_expired("x", T + 31, T + 60, 10)] == ["x"]
    assert b.get_job("m1").owner == "wb"  # type: ignore[union-attr]
    a.update_job("m1", expect_states=tuple(JobState), state=JobState.DONE, now=T)
    assert a.purge_jobs(T + 1) == 1
    assert b.get_job("m1") is not None

    assert all(key.startswith(prefix_a) for key in keys_of(redis_server, prefix_a))
    assert keys_of(redis_server, prefix_b) >= {
        f"{prefix_b}{{jobs}}:job:m1",
        f"{prefix_b}value:token",
        f"{prefix_b}lock:l",
    }
    a.close()
    b.close()


def test_key_design_puts_all_job_keys_in_one_slot(
    redis_server: RedisServer, store: RedisStore
) -> None:
    """Every job key carries the {jobs} hash tag, whatever the job's own key contains."""
    from redis.crc import key_slot  # Redis Cluster's CRC16 of the hash tag

    for key in ("kf:{odd}:msg", "m1", "{"):
        store.claim_job(key, "kf", "{}", "w1", T + 30, T)
    store.update_job("m1", expect_states=(JobState.RUNNING,), state=JobState.DONE, now=T)
    names = keys_of(redis_server, store.prefix)
    tagged = f"{store.prefix}{{jobs}}:"
    assert names == {
        *(f"{tagged}job:{key}" for key in ("kf:{odd}:msg", "m1", "{")),
        f"{tagged}leases",
        f"{tagged}state:running",
        f"{tagged}state:done",
    }
    assert {key_slot(name.encode()) for name in names} == {key_slot(b"{jobs}")}


@pytest.mark.parametrize("prefix", ["{x}:", "a}"])
def test_prefix_with_braces_is_refused(redis_server: RedisServer, prefix: str) -> None:
    with pytest.raises(ValueError, match="WECOM_REDIS_PREFIX"):
        open_store(redis_server.url, prefix=prefix)


# -- restart and faults -------------------------------------------------------------------------
def test_restart_keeps_data_and_the_store_reconnects(own_redis: RedisServer) -> None:
    """A crash (SIGKILL) loses nothing acknowledged: appendonly writes before it replies."""
    store = RedisStore.from_url(own_redis.url, prefix="r:")
    store.claim_job("accepted", "app", '{"m": 1}', "w1", T + 30, T)
    store.update_job("accepted", expect_states=(JobState.RUNNING,), state=JobState.DEFERRED, now=T)
    store.set_value("cursor", "c-42")
    assert store.acquire_lock("pull", "w1", time.time() + 60, time.time())

    own_redis.kill()
    with pytest.raises(redis.ConnectionError):
        store.get_job("accepted")
    own_redis.start()

    # The pool's old connections are dead: the store reconnects without being told.
    job = store.get_job("accepted")
    assert job is not None and (job.state, job.payload) == (JobState.DEFERRED, '{"m": 1}')
    assert store.get_value("cursor", T) == "c-42"
    assert not store.acquire_lock("pull", "w2", time.time() + 60, time.time())
    assert [j.key for j in store.claim_expired("w2", T + 31, T + 60, 5)] == ["accepted"]
    store.close()


def test_a_stalled_server_times_the_call_out(redis_server: RedisServer) -> None:
    """While the server sleeps (DEBUG SLEEP 1.5), a call fails after its socket timeout (0.2 s,
    set in the URL)."""
    store = RedisStore.from_url(f"{redis_server.url}?socket_timeout=0.2", prefix=unique_prefix())
    assert store.get_value("x", T) is None  # the pool holds a connection now
    sleeper = redis_server.stall(1.5)
    try:
        with pytest.raises(redis.TimeoutError):
            store.get_value("x", T)
    finally:
        sleeper.join(30)
    assert store.get_value("x", T) is None  # usable again afterwards
    store.close()


def test_rediss_talks_tls_and_checks_the_certificate(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "tls", tls=True)
    try:
        store = open_store(server.url, prefix="tls:")
        assert store.claim_job("m1", "app", '{"安": 1}', "w1", T + 30, T)[0]
        assert store.get_job("m1").payload == '{"安": 1}'  # type: ignore[union-attr]
        store.close()
        other_ca = tmp_path / "other"
        other_ca.mkdir()
        untrusted = server.url.split("?")[0] + f"?ssl_ca_certs={make_certificate(other_ca)}"
        with pytest.raises(ValueError, match=r"^WECOM_STORE: cannot use Redis at rediss://"):
            open_store(untrusted)
    finally:
        server.stop()


def test_tls_options_need_rediss() -> None:
    with pytest.raises(ValueError, match="'ssl_ca_certs' needs a rediss:// URL"):
        open_store("redis://127.0.0.1:1/0?ssl_ca_certs=/tmp/ca.pem")


# -- start-up errors ----------------------------------------------------------------------------
def test_unreachable_host_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ValueError) as caught:
        open_store(f"redis://:hunter2@127.0.0.1:{port}/0")
    message = str(caught.value)
    assert message.startswith("WECOM_STORE: cannot use Redis at ")
    assert f"redis://127.0.0.1:{port}/0" in message
    assert "hunter2" not in message


def test_wrong_password_is_a_clear_error(redis_server: RedisServer) -> None:
    url = redis_server.url.replace(REDIS_PASSWORD, "wrong-pass-99")
    with pytest.raises(ValueError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message == (
        f"WECOM_STORE: Redis at redis://127.0.0.1:{redis_server.port}/0 refused the credentials"
    )
    without = redis_server.url.replace(f":{REDIS_PASSWORD}@", "")
    with pytest.raises(ValueError, match="refused the credentials"):
        open_store(without)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://", "names the host"),
        ("redis:///0", "names the host"),
        ("redis://127.0.0.1:notaport/0", "not a valid redis:// URL"),
        ("redis://127.0.0.1/db1", "the database in a Redis URL is a number"),
        ("rediss://:pw@127.0.0.1:1/0?foo=1", "unsupported Redis URL option 'foo'"),
    ],
)
def test_bad_redis_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    assert str(caught.value).startswith("WECOM_STORE: ")
    assert problem in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_service_start_up_stops_with_one_line(redis_server: RedisServer, tmp_path: Path) -> None:
    """``python -m app`` checks the settings before gunicorn: exit 2, one line, no password."""
    url = redis_server.url.replace(REDIS_PASSWORD, "wrong-pass-99")
    env = {"PATH": "/usr/bin:/bin", "WECOM_STORE": url, "WECOM_LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "-p", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == (
        f"error: WECOM_STORE: Redis at redis://127.0.0.1:{redis_server.port}/0 "
        "refused the credentials"
    )
    assert "wrong-pass-99" not in done.stderr + done.stdout


# -- gevent -------------------------------------------------------------------------------------
GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import sys

    import gevent

    from app.infra.store import open_store

    store = open_store(sys.argv[1], prefix=sys.argv[2])
    created, taken, locked, ticks = [], [], [], []

    def work(n):
        for i in range(30):
            if store.claim_job(f"k{i}", "app", "{}", f"g{n}", 0.0, 0.0)[0]:
                created.append(i)
        for _ in range(100):
            jobs = store.claim_expired(f"g{n}", 1.0, 100.0, 2)
            if not jobs:
                break
            taken.extend(job.key for job in jobs)
        if store.acquire_lock("l", f"g{n}", 10.0, 1.0):
            locked.append(n)

    def tick():
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    gevent.joinall([gevent.spawn(work, n) for n in range(20)], timeout=60, raise_error=True)
    assert sorted(created) == list(range(30)), created
    assert sorted(taken) == sorted(f"k{i}" for i in range(30)), taken
    assert len(locked) == 1, locked
    # While this greenlet waits for a slow script (0.2 s), the hub keeps running the others.
    ticker = gevent.spawn(tick)
    slow = "local t = redis.call('TIME') repeat local n = redis.call('TIME') until " \\
        "(n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 200000 return 1"
    store.client.eval(slow, 0)
    during = len(ticks)
    ticker.kill()
    connection = store.client.connection_pool.get_connection()
    print(type(connection._sock).__module__, during)
    """
)


def test_greenlets_share_the_store_on_gevent_sockets(redis_server: RedisServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, redis_server.url, unique_prefix()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    module, ticks_during_wait = done.stdout.split()
    assert module.startswith("gevent")
    assert int(ticks_during_wait) > 0
