"""Store.release_leases: ending a dead process's leases at once (gunicorn's child_exit)."""

from __future__ import annotations

from app.infra.store import JobState, Store

T = 1_000_000.0


def test_release_leases_ends_the_leases_of_one_process_only(store: Store) -> None:
    for key, owner in [
        ("dead-running", "host:42:aaaa"),
        ("dead-deferred", "host:42:aaaa"),
        ("dead-outbox", "host:42:aaaa"),
        ("other-pid", "host:421:bbbb"),  # 421 starts with 42: the colon keeps it apart
        ("other-host", "otherhost:42:cccc"),
        ("dead-final", "host:42:aaaa"),
    ]:
        store.claim_job(key, "app", "{}", owner, T + 30, T)
    for key, state in [
        ("dead-deferred", JobState.DEFERRED),
        ("dead-outbox", JobState.OUTBOX),
        ("dead-final", JobState.DONE),
    ]:
        assert store.update_job(key, expect_states=(JobState.RUNNING,), state=state, now=T)

    assert store.release_leases("host:42:", T + 1) == 3
    taken = store.claim_expired("host:7:dddd", T + 1.5, T + 60, 10)
    assert sorted(job.key for job in taken) == ["dead-deferred", "dead-outbox", "dead-running"]
    assert store.get_job("other-pid").lease_until == T + 30
    assert store.get_job("other-host").lease_until == T + 30
    assert store.get_job("dead-final").lease_until == T + 30


def test_release_leases_keeps_owner_and_state_and_never_extends(store: Store) -> None:
    store.claim_job("a", "app", "{}", "host:42:aaaa", T + 30, T)
    store.claim_job("b", "app", "{}", "host:42:aaaa", T - 5, T - 40)  # already expired
    assert store.release_leases("host:42:", T) == 1
    job = store.get_job("a")
    assert (job.owner, job.state, job.lease_until, job.updated_at) == (
        "host:42:aaaa",
        JobState.RUNNING,
        T,
        T,
    )
    assert store.get_job("b").lease_until == T - 5


def test_release_leases_empty_prefix_matches_nothing(store: Store) -> None:
    store.claim_job("a", "app", "{}", "host:42:aaaa", T + 30, T)
    assert store.release_leases("", T) == 0
    assert store.get_job("a").lease_until == T + 30
