"""Store.set_value_if_locked: a value written only while the writer holds a lock (the kf cursor),
against all three stores."""

from __future__ import annotations

from app.infra.store import Store

T = 1_000_000.0
KEY = "kf:cursor:wk1"
LOCK = "kf:pull:wk1"


def test_the_holder_writes_and_replaces_an_expiring_value(store: Store) -> None:
    store.set_value(KEY, "old", T + 5)
    assert store.acquire_lock(LOCK, "a", T + 30, T)
    assert store.set_value_if_locked(KEY, "c1", LOCK, "a", T + 1)
    assert store.get_value(KEY, T + 3600) == "c1"  # written without the old expiry


def test_a_holder_that_lost_the_lock_cannot_move_the_value_back(store: Store) -> None:
    assert store.acquire_lock(LOCK, "a", T + 30, T)
    assert store.set_value_if_locked(KEY, "c1", LOCK, "a", T)
    # a's lock runs out; b takes it over and moves the cursor on
    assert store.acquire_lock(LOCK, "b", T + 60, T + 31)
    assert store.set_value_if_locked(KEY, "c2", LOCK, "b", T + 32)
    assert not store.set_value_if_locked(KEY, "c1-late", LOCK, "a", T + 33)
    assert store.get_value(KEY, T + 33) == "c2"


def test_no_write_without_the_lock_or_after_it_expired(store: Store) -> None:
    assert not store.set_value_if_locked(KEY, "x", LOCK, "a", T)  # nobody holds it
    assert store.acquire_lock(LOCK, "a", T + 30, T)
    assert not store.set_value_if_locked(KEY, "x", LOCK, "a", T + 30)  # expired at its until
    assert store.release_lock(LOCK, "a")
    assert not store.set_value_if_locked(KEY, "x", LOCK, "a", T + 1)  # released
    assert store.get_value(KEY, T) is None
