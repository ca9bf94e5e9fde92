"""TokenProvider: a shared cache, refresh before expiry, single flight across workers."""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import TokenProvider, TokenUnavailableError, WeComClient, cache_key
from app.infra.store.memory import MemoryStore
from tests.api.conftest import APP_SECRET, CORP_ID, make_client


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StubFetch:
    """Counts fetches and hands out token-1, token-2, ..."""

    def __init__(self, expires_in: int = 7200) -> None:
        self.calls = 0
        self.expires_in = expires_in

    def __call__(self) -> tuple[str, int]:
        self.calls += 1
        return f"token-{self.calls}", self.expires_in


@pytest.fixture
def clock() -> Clock:
    return Clock()


def provider(store: MemoryStore, fetch: StubFetch, clock: Clock, **kw: object) -> TokenProvider:
    return TokenProvider(CORP_ID, APP_SECRET, store, fetch, clock=clock, **kw)


# -- caching and refresh -------------------------------------------------------------------------
def test_token_is_fetched_once_and_cached(store: MemoryStore, clock: Clock) -> None:
    fetch = StubFetch()
    tokens = provider(store, fetch, clock)
    assert {tokens.get_token() for _ in range(50)} == {"token-1"}
    assert fetch.calls == 1
    # A second provider (another worker) on the same store reuses it.
    assert provider(store, fetch, clock).get_token() == "token-1"
    assert fetch.calls == 1


def test_refresh_about_five_minutes_before_expiry(store: MemoryStore, clock: Clock) -> None:
    fetch = StubFetch()
    tokens = provider(store, fetch, clock)
    start = clock.now
    assert tokens.get_token() == "token-1"
    clock.now = start + 7200 - 301
    assert tokens.get_token() == "token-1"
    clock.now = start + 7200 - 299
    assert tokens.get_token() == "token-2"
    assert fetch.calls == 2


def test_short_lifetimes_refresh_half_way(store: MemoryStore, clock: Clock) -> None:
    fetch = StubFetch(expires_in=100)
    tokens = provider(store, fetch, clock)
    start = clock.now
    assert tokens.get_token() == "token-1"
    clock.now = start + 49
    assert tokens.get_token() == "token-1"
    clock.now = start + 51
    assert tokens.get_token() == "token-2"


def test_expired_value_is_never_served(store: MemoryStore, clock: Clock) -> None:
    fetch = StubFetch()
    tokens = provider(store, fetch, clock)
    tokens.get_token()
    clock.now += 7201
    assert tokens.get_token() == "token-2"


def test_invalidate_only_removes_that_token(store: MemoryStore, clock: Clock) -> None:
    fetch = StubFetch()
    tokens = provider(store, fetch, clock)
    assert tokens.get_token() == "token-1"
    assert tokens.invalidate("some-older-token") is False
    assert tokens.get_token() == "token-1"
    assert tokens.invalidate("token-1") is True
    assert tokens.invalidate("token-1") is False
    assert tokens.get_token() == "token-2"


def test_the_secret_is_neither_key_nor_value(store: MemoryStore, clock: Clock) -> None:
    tokens = provider(store, StubFetch(), clock)
    tokens.get_token()
    key = cache_key(CORP_ID, APP_SECRET)
    assert key == tokens.key
    assert APP_SECRET not in key
    assert key != cache_key(CORP_ID, "another-secret")  # one token per secret
    raw = store.get_value(key, clock.now)
    assert APP_SECRET not in raw
    assert json.loads(raw)["token"] == "token-1"


def test_garbage_in_the_store_is_replaced(store: MemoryStore, clock: Clock) -> None:
    store.set_value(cache_key(CORP_ID, APP_SECRET), "not json", clock.now + 100)
    assert provider(store, StubFetch(), clock).get_token() == "token-1"


def test_a_failed_fetch_releases_the_lock(store: MemoryStore, clock: Clock) -> None:
    calls = 0

    def failing() -> tuple[str, int]:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        provider(store, failing, clock).get_token()
    fetch = StubFetch()
    assert provider(store, fetch, clock).get_token() == "token-1"  # not blocked by a stale lock


# -- another worker holds the refresh lock ---------------------------------------------------------
def hold_lock(store: MemoryStore, clock: Clock, until: float) -> None:
    name = cache_key(CORP_ID, APP_SECRET) + ":refresh"
    assert store.acquire_lock(name, "other-worker", until, clock.now)


def test_waits_for_the_other_workers_token(store: MemoryStore, clock: Clock) -> None:
    hold_lock(store, clock, clock.now + 60)
    fetch = StubFetch()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the other worker finishes while we poll
            other = provider(store, StubFetch(), clock)
            name = other.key + ":refresh"
            store.release_lock(name, "other-worker")
            value = json.dumps(
                {"token": "theirs", "expires_at": clock.now + 7200, "refresh_at": clock.now + 6900}
            )
            store.set_value(other.key, value, clock.now + 7200)

    tokens = provider(store, fetch, clock, sleep=sleep, poll_interval=0.01)
    assert tokens.get_token() == "theirs"
    assert fetch.calls == 0
    assert len(sleeps) == 3


def test_serves_the_old_token_while_another_worker_refreshes(
    store: MemoryStore, clock: Clock
) -> None:
    fetch = StubFetch()
    tokens = provider(store, fetch, clock)
    tokens.get_token()
    clock.now += 7000  # inside the refresh window, not expired
    hold_lock(store, clock, clock.now + 60)
    assert tokens.get_token() == "token-1"
    assert fetch.calls == 1


def test_wait_is_bounded(store: MemoryStore, clock: Clock) -> None:
    hold_lock(store, clock, clock.now + 600)
    sleeps: list[float] = []
    ticks = iter(range(10_000))

    tokens = provider(
        store,
        StubFetch(),
        clock,
        sleep=sleeps.append,
        monotonic=lambda: float(next(ticks)),  # one second per look at the clock
        wait_timeout=5.0,
        poll_interval=0.5,
    )
    with pytest.raises(TokenUnavailableError, match=r"5\.0s"):
        tokens.get_token()
    assert 3 <= len(sleeps) <= 12


# -- against the fake server ---------------------------------------------------------------------
@pytest.fixture
def clients(fake: FakeWeCom, store: MemoryStore) -> Iterator[list[WeComClient]]:
    made = [make_client(fake, store) for _ in range(8)]
    yield made
    for c in made:
        c.close()


def test_threads_sharing_a_store_cause_one_gettoken(
    fake: FakeWeCom, clients: list[WeComClient]
) -> None:
    fake.fault("gettoken", "delay", seconds=0.3)  # everyone arrives while the first fetches
    barrier = threading.Barrier(len(clients))
    results: queue.Queue[str] = queue.Queue()

    def run(c: WeComClient) -> None:
        barrier.wait(10)
        results.put(c.tokens.get_token())

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    tokens = [results.get_nowait() for _ in clients]
    assert len(set(tokens)) == 1
    assert fake.gettoken_calls == 1


def test_processes_sharing_sqlite_cause_one_gettoken(fake: FakeWeCom, tmp_path: Path) -> None:
    """N spawned processes (like gunicorn workers) ask at once: exactly one gettoken."""
    from tests.api._token_worker import fetch_token

    workers = 6
    fake.fault("gettoken", "delay", seconds=0.5)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    results = ctx.Queue()
    go = ctx.Event()
    db = str(tmp_path / "store.db")
    procs = [
        ctx.Process(
            target=fetch_token,
            args=(db, fake.base_url, CORP_ID, APP_SECRET, ready, go, results),
        )
        for _ in range(workers)
    ]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        go.set()
        outcomes = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join(5)
        for q in (ready, results):
            q.close()
            q.join_thread()
    assert [o[0] for o in outcomes] == ["ok"] * workers, outcomes
    assert len({o[1] for o in outcomes}) == 1
    assert sum(o[2] for o in outcomes) == 1
    assert fake.gettoken_calls == 1
    assert all(p.exitcode == 0 for p in procs)
