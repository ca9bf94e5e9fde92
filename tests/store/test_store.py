"""The semantics of every Store operation, run against each implementation."""

from __future__ import annotations

import threading

from app.infra.store import UNSET, Job, JobState, Store

T = 1_000_000.0  # a fixed "now"; tests move the clock by hand


def claim(
    store: Store, key: str, *, owner: str = "w1", lease: float = T + 30, now: float = T
) -> Job:
    created, job = store.claim_job(key, "app", '{"n": 1}', owner, lease, now)
    assert created
    return job


def move(store: Store, key: str, state: JobState, now: float = T, **fields: object) -> None:
    """Put a job into ``state`` whatever it is in now."""
    assert store.update_job(key, expect_states=tuple(JobState), state=state, now=now, **fields)


# -- claim_job / get_job ----------------------------------------------------------------------
def test_claim_job_creates_a_running_job(store: Store) -> None:
    created, job = store.claim_job("m1", "kf", '{"msg": "你好"}', "w1", T + 30, T)
    assert created
    assert job == Job(
        key="m1",
        kind="kf",
        payload='{"msg": "你好"}',
        state=JobState.RUNNING,
        owner="w1",
        lease_until=T + 30,
        reply=None,
        attempts=0,
        last_error=None,
        created_at=T,
        updated_at=T,
    )
    assert store.get_job("m1") == job
    assert isinstance(store.get_job("m1").state, JobState)  # type: ignore[union-attr]


def test_claim_job_returns_the_existing_job_untouched(store: Store) -> None:
    first = claim(store, "m1")
    created, existing = store.claim_job("m1", "kf", "{}", "w2", T + 99, T + 5)
    assert not created
    assert existing == first
    assert store.get_job("m1") == first


def test_claim_job_after_final_state_still_refuses(store: Store) -> None:
    claim(store, "m1")
    move(store, "m1", JobState.PASSIVE, reply='"ok"')
    created, existing = store.claim_job("m1", "app", "{}", "w2", T + 30, T + 1)
    assert not created
    assert existing.state is JobState.PASSIVE
    assert existing.reply == '"ok"'


def test_get_job_missing(store: Store) -> None:
    assert store.get_job("nope") is None


def test_returned_jobs_are_copies(store: Store) -> None:
    job = claim(store, "m1")
    job.state = JobState.DEAD
    job.owner = "someone"
    fetched = store.get_job("m1")
    assert fetched is not None
    assert fetched.state is JobState.RUNNING
    assert fetched.owner == "w1"
    fetched.reply = "changed"
    assert store.get_job("m1").reply is None  # type: ignore[union-attr]


# -- update_job -------------------------------------------------------------------------------
def test_update_job_sets_given_fields(store: Store) -> None:
    claim(store, "m1")
    assert store.update_job(
        "m1",
        expect_states=(JobState.RUNNING,),
        expect_owner="w1",
        state=JobState.OUTBOX,
        owner=None,
        lease_until=T + 60,
        reply='{"text": "答"}',
        attempts=2,
        last_error="timeout",
        now=T + 1,
    )
    job = store.get_job("m1")
    assert job is not None
    assert (job.state, job.owner, job.lease_until) == (JobState.OUTBOX, None, T + 60)
    assert (job.reply, job.attempts, job.last_error) == ('{"text": "答"}', 2, "timeout")
    assert (job.created_at, job.updated_at) == (T, T + 1)


def test_update_job_leaves_defaults_alone(store: Store) -> None:
    claim(store, "m1")
    move(store, "m1", JobState.DEFERRED, reply="r", attempts=3, last_error="e")
    assert store.update_job("m1", expect_states=(JobState.DEFERRED,), now=T + 2)
    job = store.get_job("m1")
    assert job is not None
    assert (job.state, job.owner, job.lease_until) == (JobState.DEFERRED, "w1", T + 30)
    assert (job.reply, job.attempts, job.last_error) == ("r", 3, "e")
    assert job.updated_at == T + 2


def test_update_job_unset_versus_none(store: Store) -> None:
    claim(store, "m1")
    move(store, "m1", JobState.RUNNING, reply="r", last_error="e")
    assert store.update_job(
        "m1", expect_states=(JobState.RUNNING,), owner=UNSET, reply=None, last_error=UNSET, now=T
    )
    job = store.get_job("m1")
    assert job is not None
    assert (job.owner, job.reply, job.last_error) == ("w1", None, "e")
    assert store.update_job("m1", expect_states=(JobState.RUNNING,), last_error=None, now=T)
    assert store.get_job("m1").last_error is None  # type: ignore[union-attr]


def test_update_job_cas_fails_on_state(store: Store) -> None:
    claim(store, "m1")
    before = store.get_job("m1")
    assert not store.update_job(
        "m1",
        expect_states=(JobState.OUTBOX, JobState.DEFERRED),
        state=JobState.DONE,
        reply="x",
        now=T + 1,
    )
    assert store.get_job("m1") == before


def test_update_job_cas_fails_on_owner(store: Store) -> None:
    claim(store, "m1", owner="w1")
    before = store.get_job("m1")
    assert not store.update_job(
        "m1", expect_states=(JobState.RUNNING,), expect_owner="w2", state=JobState.DONE, now=T + 1
    )
    assert store.get_job("m1") == before


def test_update_job_owner_not_checked_when_not_expected(store: Store) -> None:
    claim(store, "m1", owner="w1")
    assert store.update_job("m1", expect_states=(JobState.RUNNING,), state=JobState.DONE, now=T)
    assert store.get_job("m1").state is JobState.DONE  # type: ignore[union-attr]


def test_update_job_expect_owner_does_not_match_an_ownerless_job(store: Store) -> None:
    claim(store, "m1")
    move(store, "m1", JobState.OUTBOX, owner=None)
    assert not store.update_job(
        "m1", expect_states=(JobState.OUTBOX,), expect_owner="w1", state=JobState.DONE, now=T
    )


def test_update_job_several_expected_states(store: Store) -> None:
    claim(store, "m1")
    assert store.update_job(
        "m1", expect_states=(JobState.DEFERRED, JobState.RUNNING), state=JobState.DONE, now=T
    )


def test_update_job_missing_or_no_expected_states(store: Store) -> None:
    assert not store.update_job("nope", expect_states=tuple(JobState), state=JobState.DONE, now=T)
    claim(store, "m1")
    assert not store.update_job("m1", expect_states=(), state=JobState.DONE, now=T)
    assert store.get_job("m1").state is JobState.RUNNING  # type: ignore[union-attr]


def test_update_job_only_one_of_two_racing_cas_wins(store: Store) -> None:
    claim(store, "m1")
    results = [
        store.update_job(
            "m1", expect_states=(JobState.RUNNING,), state=JobState.DONE, owner=o, now=T
        )
        for o in ("a", "b")
    ]
    assert results == [True, False]
    assert store.get_job("m1").owner == "a"  # type: ignore[union-attr]


# -- renew_leases -----------------------------------------------------------------------------
def test_renew_leases_only_own_active_jobs(store: Store) -> None:
    for key in ("a", "b", "c", "d", "e"):
        claim(store, key, owner="w1")
    claim(store, "other", owner="w2")
    move(store, "b", JobState.OUTBOX)
    move(store, "c", JobState.DONE)
    move(store, "d", JobState.DEAD)
    move(store, "e", JobState.DEFERRED)
    renewed = store.renew_leases("w1", ["a", "b", "c", "d", "e", "other", "missing", "a"], T + 90)
    assert renewed == 3  # a, b, e
    leases = {k: store.get_job(k).lease_until for k in ("a", "b", "c", "d", "e", "other")}  # type: ignore[union-attr]
    assert leases == {
        "a": T + 90,
        "b": T + 90,
        "c": T + 30,
        "d": T + 30,
        "e": T + 90,
        "other": T + 30,
    }


def test_renew_leases_lost_after_takeover(store: Store) -> None:
    claim(store, "a", owner="w1", lease=T + 10)
    assert [j.key for j in store.claim_expired("w2", T + 11, T + 40, 10)] == ["a"]
    assert store.renew_leases("w1", ["a"], T + 100) == 0
    assert store.get_job("a").lease_until == T + 40  # type: ignore[union-attr]


def test_renew_leases_empty(store: Store) -> None:
    assert store.renew_leases("w1", [], T) == 0


def test_renew_leases_many_keys(store: Store) -> None:
    keys = [f"k{i}" for i in range(1200)]  # more than one SQL batch
    for key in keys:
        claim(store, key)
    assert store.renew_leases("w1", keys, T + 500) == 1200


# -- claim_expired ----------------------------------------------------------------------------
def test_claim_expired_takes_over_expired_active_jobs(store: Store) -> None:
    claim(store, "running", lease=T + 5)
    claim(store, "deferred", lease=T + 6)
    move(store, "deferred", JobState.DEFERRED)
    claim(store, "outbox", lease=T + 7)
    move(store, "outbox", JobState.OUTBOX, owner=None, attempts=4)
    claim(store, "fresh", lease=T + 50)
    for final in (JobState.PASSIVE, JobState.DONE, JobState.DEAD):
        claim(store, final.value, lease=T + 1)
        move(store, final.value, final)

    claimed = store.claim_expired("w2", T + 20, T + 80, 100)

    assert [j.key for j in claimed] == ["running", "deferred", "outbox"]
    for job in claimed:
        assert (job.owner, job.lease_until, job.updated_at) == ("w2", T + 80, T + 20)
        assert store.get_job(job.key) == job
    assert [j.state for j in claimed] == [JobState.RUNNING, JobState.DEFERRED, JobState.OUTBOX]
    assert claimed[2].attempts == 4
    assert store.get_job("fresh").owner == "w1"  # type: ignore[union-attr]
    assert store.claim_expired("w3", T + 20, T + 80, 100) == []


def test_claim_expired_lease_ending_now_is_not_expired(store: Store) -> None:
    claim(store, "a", lease=T + 10)
    assert store.claim_expired("w2", T + 10, T + 40, 10) == []
    assert [j.key for j in store.claim_expired("w2", T + 10.001, T + 40, 10)] == ["a"]


def test_claim_expired_oldest_first_and_limit(store: Store) -> None:
    # lease order differs from insertion order; ties on lease break on key, not on age
    claim(store, "late", lease=T + 9, now=T)
    claim(store, "early", lease=T + 1, now=T + 0.5)
    claim(store, "tie-b", lease=T + 5, now=T - 1)
    claim(store, "tie-c", lease=T + 5, now=T)
    claim(store, "tie-a", lease=T + 5, now=T)
    claim(store, "middle", lease=T + 7, now=T)
    now = T + 100

    first = store.claim_expired("w2", now, now + 60, 3)
    second = store.claim_expired("w3", now, now + 60, 2)
    third = store.claim_expired("w4", now, now + 60, 10)

    assert [j.key for j in first] == ["early", "tie-a", "tie-b"]
    assert [j.key for j in second] == ["tie-c", "middle"]
    assert [j.key for j in third] == ["late"]


def test_claim_expired_zero_limit(store: Store) -> None:
    claim(store, "a", lease=T)
    assert store.claim_expired("w2", T + 1, T + 60, 0) == []
    assert store.get_job("a").owner == "w1"  # type: ignore[union-attr]


def test_claimed_job_can_be_reclaimed_when_new_lease_ends(store: Store) -> None:
    claim(store, "a", lease=T)
    assert len(store.claim_expired("w2", T + 1, T + 10, 5)) == 1
    assert store.claim_expired("w3", T + 9, T + 20, 5) == []
    again = store.claim_expired("w3", T + 11, T + 20, 5)
    assert [(j.key, j.owner) for j in again] == [("a", "w3")]


def test_new_owner_can_update_after_claim(store: Store) -> None:
    claim(store, "a", lease=T)
    store.claim_expired("w2", T + 1, T + 10, 5)
    assert not store.update_job(
        "a", expect_states=(JobState.RUNNING,), expect_owner="w1", state=JobState.DONE, now=T + 2
    )
    assert store.update_job(
        "a", expect_states=(JobState.RUNNING,), expect_owner="w2", state=JobState.DONE, now=T + 2
    )


# -- list_jobs / purge_jobs -------------------------------------------------------------------
def test_list_jobs_by_state_least_recently_updated_first(store: Store) -> None:
    for i, key in enumerate(["d1", "d2", "d3"]):
        claim(store, key)
        move(store, key, JobState.DEAD, now=T + 10 - i)
    claim(store, "r1")
    assert [j.key for j in store.list_jobs(JobState.DEAD)] == ["d3", "d2", "d1"]
    assert [j.key for j in store.list_jobs(JobState.DEAD, limit=2)] == ["d3", "d2"]
    assert [j.key for j in store.list_jobs(JobState.RUNNING)] == ["r1"]
    assert store.list_jobs(JobState.OUTBOX) == []
    assert store.list_jobs(JobState.DEAD, limit=0) == []
    assert store.list_jobs(JobState.DEAD)[0] == store.get_job("d3")


def test_list_jobs_default_limit(store: Store) -> None:
    for i in range(105):
        claim(store, f"k{i:03}")
    assert len(store.list_jobs(JobState.RUNNING)) == 100


def test_purge_jobs_deletes_old_finished_jobs_but_keeps_dead(store: Store) -> None:
    layout = {
        "old-passive": (JobState.PASSIVE, T),
        "old-done": (JobState.DONE, T),
        "old-dead": (JobState.DEAD, T),
        "old-running": (JobState.RUNNING, T),
        "old-outbox": (JobState.OUTBOX, T),
        "old-deferred": (JobState.DEFERRED, T),
        "new-done": (JobState.DONE, T + 100),
        "edge-done": (JobState.DONE, T + 50),
    }
    for key, (state, updated) in layout.items():
        claim(store, key)
        move(store, key, state, now=updated)

    assert store.purge_jobs(T + 50) == 2

    left = {k for k in layout if store.get_job(k) is not None}
    assert left == set(layout) - {"old-passive", "old-done"}
    assert store.purge_jobs(T + 50) == 0


def test_purge_jobs_many(store: Store) -> None:
    for i in range(1234):  # more than one SQL batch
        claim(store, f"k{i}")
        move(store, f"k{i}", JobState.DONE)
    assert store.purge_jobs(T + 1) == 1234
    assert store.list_jobs(JobState.DONE) == []


def test_purged_key_can_be_claimed_again(store: Store) -> None:
    claim(store, "a")
    move(store, "a", JobState.DONE)
    store.purge_jobs(T + 1)
    created, job = store.claim_job("a", "app", "{}", "w2", T + 40, T + 2)
    assert created
    assert job.owner == "w2"


# -- values -----------------------------------------------------------------------------------
def test_value_roundtrip_and_overwrite(store: Store) -> None:
    assert store.get_value("token", T) is None
    store.set_value("token", "abc")
    assert store.get_value("token", T + 10**9) == "abc"  # no expiry
    store.set_value("token", "令牌", expires_at=T + 10)
    assert store.get_value("token", T) == "令牌"
    store.set_value("token", "def")  # overwriting drops the old expiry
    assert store.get_value("token", T + 20) == "def"


def test_value_expiry(store: Store) -> None:
    store.set_value("token", "abc", expires_at=T + 10)
    assert store.get_value("token", T + 9.999) == "abc"
    assert store.get_value("token", T + 10) is None
    assert store.get_value("token", T + 11) is None
    store.set_value("token", "new", expires_at=T + 100)
    assert store.get_value("token", T + 11) == "new"


def test_values_are_independent(store: Store) -> None:
    store.set_value("a", "1")
    store.set_value("b", "2")
    assert store.delete_value("a")
    assert store.get_value("a", T) is None
    assert store.get_value("b", T) == "2"


def test_delete_value(store: Store) -> None:
    assert not store.delete_value("missing")
    store.set_value("k", "v")
    assert store.delete_value("k")
    assert store.get_value("k", T) is None
    assert not store.delete_value("k")


def test_delete_value_if_value(store: Store) -> None:
    store.set_value("k", "old")
    assert not store.delete_value("k", if_value="other")
    assert store.get_value("k", T) == "old"
    assert store.delete_value("k", if_value="old")
    assert store.get_value("k", T) is None
    assert not store.delete_value("k", if_value="old")


def test_value_does_not_collide_with_jobs_or_locks(store: Store) -> None:
    claim(store, "same")
    assert store.acquire_lock("same", "w1", T + 10, T)
    assert store.get_value("same", T) is None
    store.set_value("same", "v")
    assert store.get_job("same") is not None
    assert not store.acquire_lock("same", "w2", T + 10, T)


# -- locks ------------------------------------------------------------------------------------
def test_lock_acquire_and_exclusion(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert not store.acquire_lock("refresh", "w2", T + 10, T + 1)
    assert store.acquire_lock("other", "w2", T + 10, T + 1)


def test_lock_expires(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert not store.acquire_lock("refresh", "w2", T + 20, T + 9.999)
    assert store.acquire_lock("refresh", "w2", T + 20, T + 10)
    assert not store.acquire_lock("refresh", "w1", T + 30, T + 11)


def test_lock_reacquire_by_owner_extends(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert store.acquire_lock("refresh", "w1", T + 50, T + 5)
    assert not store.acquire_lock("refresh", "w2", T + 60, T + 30)  # extended past T + 10
    assert store.acquire_lock("refresh", "w2", T + 60, T + 50)


def test_lock_reacquire_by_owner_after_expiry(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert store.acquire_lock("refresh", "w1", T + 30, T + 20)
    assert not store.acquire_lock("refresh", "w2", T + 30, T + 25)


def test_lock_release_by_non_owner_fails(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert not store.release_lock("refresh", "w2")
    assert not store.acquire_lock("refresh", "w2", T + 10, T + 1)
    assert store.release_lock("refresh", "w1")
    assert store.acquire_lock("refresh", "w2", T + 10, T + 1)


def test_lock_release(store: Store) -> None:
    assert not store.release_lock("refresh", "w1")
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert store.release_lock("refresh", "w1")
    assert not store.release_lock("refresh", "w1")


def test_lock_release_after_expiry_by_old_owner(store: Store) -> None:
    assert store.acquire_lock("refresh", "w1", T + 10, T)
    assert store.acquire_lock("refresh", "w2", T + 30, T + 20)
    assert not store.release_lock("refresh", "w1")  # w2 holds it now
    assert store.release_lock("refresh", "w2")


# -- threads ----------------------------------------------------------------------------------
def test_threads_share_one_store(store: Store) -> None:
    """Eight threads race claim_job and claim_expired on one store object."""
    keys = [f"k{i}" for i in range(100)]
    created: list[str] = []
    taken: list[str] = []
    barrier = threading.Barrier(8, timeout=30)

    def work(n: int) -> None:
        barrier.wait()
        for key in keys:
            ok, _ = store.claim_job(key, "app", "{}", f"t{n}", T, T - 1)
            if ok:
                created.append(key)
        barrier.wait()
        for _ in range(200):
            got = store.claim_expired(f"t{n}", T + 1, T + 100, 3)
            if not got:
                break
            taken.extend(j.key for j in got)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(created) == sorted(keys)
    assert sorted(taken) == sorted(keys)


def test_close_is_idempotent(store: Store) -> None:
    store.close()
    store.close()
