"""An in-process store for tests and ``memory://``.

Everything lives in this process, so several gunicorn workers each get their own store and
dedup works only within a worker: use it with one worker, or in tests.

One ``threading.Lock`` guards all state. Under gevent monkey-patching that lock is gevent's; and
even an unpatched lock is safe, because nothing inside a critical section can switch greenlets
(no I/O, no sleeping), so a greenlet never waits for a lock that another greenlet holds.
"""

from __future__ import annotations

import dataclasses
import threading

from .base import FINAL_STATES, UNSET, Job, JobState, Store, Unset

_PURGEABLE = FINAL_STATES - {JobState.DEAD}


class MemoryStore(Store):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._values: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, tuple[str, float]] = {}

    # -- jobs ---------------------------------------------------------------------------------
    def claim_job(
        self, key: str, kind: str, payload: str, owner: str, lease_until: float, now: float
    ) -> tuple[bool, Job]:
        with self._lock:
            existing = self._jobs.get(key)
            if existing is not None:
                return False, dataclasses.replace(existing)
            job = Job(
                key=key,
                kind=kind,
                payload=payload,
                state=JobState.RUNNING,
                owner=owner,
                lease_until=lease_until,
                created_at=now,
                updated_at=now,
            )
            self._jobs[key] = job
            return True, dataclasses.replace(job)

    def get_job(self, key: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(key)
            return None if job is None else dataclasses.replace(job)

    def update_job(
        self,
        key: str,
        *,
        expect_states: tuple[JobState, ...],
        expect_owner: str | None = None,
        state: JobState | None = None,
        owner: str | Unset | None = UNSET,
        lease_until: float | None = None,
        reply: str | Unset | None = UNSET,
        attempts: int | None = None,
        last_error: str | Unset | None = UNSET,
        now: float,
    ) -> bool:
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.state not in expect_states:
                return False
            if expect_owner is not None and job.owner != expect_owner:
                return False
            if state is not None:
                job.state = JobState(state)
            if owner is not UNSET:
                job.owner = owner
            if lease_until is not None:
                job.lease_until = lease_until
            if reply is not UNSET:
                job.reply = reply
            if attempts is not None:
                job.attempts = attempts
            if last_error is not UNSET:
                job.last_error = last_error
            job.updated_at = now
            return True

    def renew_leases(self, owner: str, keys: list[str], lease_until: float) -> int:
        renewed = 0
        with self._lock:
            for key in set(keys):
                job = self._jobs.get(key)
                if job is not None and job.owner == owner and not job.state.final:
                    job.lease_until = lease_until
                    renewed += 1
        return renewed

    def claim_expired(self, owner: str, now: float, lease_until: float, limit: int) -> list[Job]:
        with self._lock:
            due = sorted(
                (j for j in self._jobs.values() if not j.state.final and j.lease_until < now),
                key=lambda j: (j.lease_until, j.key),
            )[: max(limit, 0)]
            for job in due:
                job.owner = owner
                job.lease_until = lease_until
                job.updated_at = now
            return [dataclasses.replace(job) for job in due]

    def release_leases(self, owner_prefix: str, now: float) -> int:
        if not owner_prefix:
            return 0
        released = 0
        with self._lock:
            for job in self._jobs.values():
                owned = job.owner is not None and job.owner.startswith(owner_prefix)
                if owned and not job.state.final and job.lease_until > now:
                    job.lease_until = now
                    released += 1
        return released

    def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]:
        with self._lock:
            found = sorted(
                (j for j in self._jobs.values() if j.state == state),
                key=lambda j: (j.updated_at, j.key),
            )
            return [dataclasses.replace(job) for job in found[: max(limit, 0)]]

    def purge_jobs(self, finished_before: float) -> int:
        with self._lock:
            doomed = [
                key
                for key, job in self._jobs.items()
                if job.state in _PURGEABLE and job.updated_at < finished_before
            ]
            for key in doomed:
                del self._jobs[key]
            return len(doomed)

    # -- values -------------------------------------------------------------------------------
    def get_value(self, key: str, now: float) -> str | None:
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if expires_at is not None and expires_at <= now:
                del self._values[key]
                return None
            return value

    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None:
        with self._lock:
            self._values[key] = (value, expires_at)

    def delete_value(self, key: str, if_value: str | None = None) -> bool:
        with self._lock:
            entry = self._values.get(key)
            if entry is None or (if_value is not None and entry[0] != if_value):
                return False
            del self._values[key]
            return True

    def set_value_if_locked(
        self, key: str, value: str, lock_name: str, owner: str, now: float
    ) -> bool:
        with self._lock:
            held = self._locks.get(lock_name)
            if held is None or held[0] != owner or held[1] <= now:
                return False
            self._values[key] = (value, None)
            return True

    # -- locks --------------------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool:
        with self._lock:
            held = self._locks.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._locks[name] = (owner, until)
            return True

    def release_lock(self, name: str, owner: str) -> bool:
        with self._lock:
            held = self._locks.get(name)
            if held is None or held[0] != owner:
                return False
            del self._locks[name]
            return True
