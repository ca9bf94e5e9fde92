"""The storage interface shared by dedup, delivery, the token cache and the 微信客服 cursor.

Every operation is atomic on its own, so an implementation on SQLite (one host, many gunicorn
workers), in memory (tests) or on Redis (SET NX, Lua compare-and-set, a sorted set of lease expiries)
can serve it without changing callers.

A *job* is one unit of accepted work: a callback message, or one 微信客服 message. Its ``key`` is the
dedup key (``MsgId`` for messages, a composite for events, ``kf:<msgid>`` for kf). The job's
``lease_until`` doubles as "next attempt time": a job whose lease has run out and that is not final
is picked up again by :meth:`Store.claim_expired`, whether its worker died or a delivery is waiting
for its retry.
"""

from __future__ import annotations

import abc
import dataclasses
import enum


class JobState(str, enum.Enum):
    RUNNING = "running"  # the handler is running; the owner holds the lease
    PASSIVE = "passive"  # answered in the HTTP response; ``reply`` holds it for retried callbacks
    DEFERRED = "deferred"  # the deadline passed; the handler is still running, its answer goes by API
    OUTBOX = "outbox"  # an answer waits for delivery through the API
    DONE = "done"  # delivered, or nothing to deliver
    DEAD = "dead"  # delivery kept failing; a person can list and re-send it

    @property
    def final(self) -> bool:
        return self in (JobState.PASSIVE, JobState.DONE, JobState.DEAD)


@dataclasses.dataclass
class Job:
    key: str
    kind: str  # "app" or "kf": which delivery path answers it
    payload: str  # JSON text: what is needed to run the handler again (endpoint name, message dict)
    state: JobState
    owner: str | None
    lease_until: float
    reply: str | None = None  # JSON text of the answer once it exists
    attempts: int = 0
    last_error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class Store(abc.ABC):
    """Atomic operations over jobs, small expiring values and named locks."""

    # -- jobs ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim_job(
        self, key: str, kind: str, payload: str, owner: str, lease_until: float, now: float
    ) -> tuple[bool, Job]:
        """Insert a RUNNING job owned by ``owner`` unless ``key`` exists.

        Returns ``(True, new_job)`` when this call created it, ``(False, existing_job)`` otherwise.
        """

    @abc.abstractmethod
    def get_job(self, key: str) -> Job | None: ...

    @abc.abstractmethod
    def update_job(
        self,
        key: str,
        *,
        expect_states: tuple[JobState, ...],
        expect_owner: str | None = None,
        state: JobState | None = None,
        owner: str | None = ...,  # type: ignore[assignment]
        lease_until: float | None = None,
        reply: str | None = ...,  # type: ignore[assignment]
        attempts: int | None = None,
        last_error: str | None = ...,  # type: ignore[assignment]
        now: float,
    ) -> bool:
        """Compare-and-set: change the given fields only if the job is in one of ``expect_states``
        (and owned by ``expect_owner`` when that is given). Returns whether it changed.
        Fields left at their default (``None``, or ``...`` for nullable ones) stay as they are."""

    @abc.abstractmethod
    def renew_leases(self, owner: str, keys: list[str], lease_until: float) -> int:
        """Extend the lease of the non-final jobs in ``keys`` still owned by ``owner``."""

    @abc.abstractmethod
    def claim_expired(self, owner: str, now: float, lease_until: float, limit: int) -> list[Job]:
        """Take over up to ``limit`` non-final jobs whose lease ended before ``now``, oldest first:
        set their owner and new lease atomically, so two workers never take the same job."""

    @abc.abstractmethod
    def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]: ...

    @abc.abstractmethod
    def purge_jobs(self, finished_before: float) -> int:
        """Delete final jobs last updated before ``finished_before`` (dead ones are kept)."""

    # -- small values with an optional expiry (access tokens, kf cursors) ----------------------
    @abc.abstractmethod
    def get_value(self, key: str, now: float) -> str | None:
        """The value, or None when absent or expired."""

    @abc.abstractmethod
    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None: ...

    @abc.abstractmethod
    def delete_value(self, key: str, if_value: str | None = None) -> bool:
        """Delete the key (only while it still holds ``if_value`` when that is given)."""

    # -- named locks with expiry (single-flight token refresh, one kf pull per account) --------
    @abc.abstractmethod
    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool:
        """Take the lock if it is free, expired, or already ours (then extend it to ``until``)."""

    @abc.abstractmethod
    def release_lock(self, name: str, owner: str) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release connections."""
