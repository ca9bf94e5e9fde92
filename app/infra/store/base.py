"""The storage interface shared by dedup, delivery, the token cache and the 微信客服 cursor.

Every operation is atomic on its own, so an implementation on SQLite (one host, many gunicorn
workers), in memory (tests) or on Redis can serve it without changing callers. Times are plain
``time.time()`` floats that the caller passes in, so tests control the clock.

A *job* is one unit of accepted work: a callback message, or one 微信客服 message. Its ``key`` is
the dedup key (``MsgId`` for messages, a composite for events, ``kf:<msgid>`` for kf). The job's
``lease_until`` doubles as "next attempt time": a job whose lease has run out and that is not
final is picked up again by :meth:`Store.claim_expired`, whether its worker died or a delivery is
waiting for its retry.

Boundaries: a lease is over once ``lease_until < now``; a value or lock is gone once
``expires_at <= now`` / ``until <= now``.

How the interface maps to Redis (not implemented; kept in mind so every operation stays one
atomic Redis command or one Lua script):

* a job is the hash ``job:<key>``; the sorted set ``leases`` holds the keys of non-final jobs
  scored by ``lease_until``, and one sorted set per state (``state:<name>``) scored by
  ``updated_at``;
* ``claim_job``: one Lua script: if ``EXISTS job:<key>`` return ``HGETALL``, else ``HSET`` the
  hash, ``ZADD leases`` and ``ZADD state:running`` (the same effect as ``SET NX`` plus a hash);
* ``update_job``: a Lua compare-and-set: ``HMGET state owner``, compare, ``HSET`` the fields, move
  the key between the ``state:*`` sets, ``ZADD``/``ZREM leases`` as it stays active or turns final;
* ``renew_leases``: a Lua loop over the keys checking owner and state, ``HSET`` + ``ZADD XX``;
* ``claim_expired``: a Lua script ``ZRANGE leases -inf (now BYSCORE LIMIT 0 limit`` then sets
  owner and lease of each and re-scores it; the script runs alone, so no job goes to two workers;
* ``release_leases``: a Lua script: ``ZRANGE leases (now +inf BYSCORE``, ``HGET owner`` of each,
  and for those whose owner starts with the prefix ``HSET lease_until now`` + ``ZADD leases now``;
* ``list_jobs`` / ``purge_jobs``: ``ZRANGE state:<name>`` by score, purging in batches;
* values: ``SET key value PXAT expires_at`` / ``GET`` (Redis expires them itself, ``now`` is
  unused); ``delete_value(if_value=...)`` is a Lua compare-and-``DEL``;
* locks: ``SET lock:<name> owner NX PXAT until``, or a Lua script when the owner re-acquires;
  ``release_lock`` is a Lua compare-and-``DEL``.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import functools
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from app.infra.metrics import STORE_SECONDS


class JobState(enum.StrEnum):
    RUNNING = "running"  # the handler is running; the owner holds the lease
    PASSIVE = "passive"  # answered in the HTTP response; ``reply`` holds it for retried callbacks
    DEFERRED = "deferred"  # the deadline passed; the handler still runs, its answer goes by API
    OUTBOX = "outbox"  # an answer waits for delivery through the API
    DONE = "done"  # delivered, or nothing to deliver
    DEAD = "dead"  # delivery kept failing; a person can list and re-send it

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


#: States a job never leaves on its own: they hold no lease and are never claimed again.
FINAL_STATES: Final = frozenset({JobState.PASSIVE, JobState.DONE, JobState.DEAD})
#: States whose ``lease_until`` matters: :meth:`Store.claim_expired` takes these over.
ACTIVE_STATES: Final = tuple(s for s in JobState if s not in FINAL_STATES)


class Unset(enum.Enum):
    """The type of :data:`UNSET`. An enum member, so a type checker narrows ``x is UNSET``."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this field as it is" for :meth:`Store.update_job` fields where ``None`` is a real value.
UNSET: Final = Unset.UNSET


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


#: Operations timed into ``wecom_store_operation_seconds`` (see ``Store.__init_subclass__``).
TIMED_OPERATIONS: Final = (
    "claim_job",
    "get_job",
    "update_job",
    "renew_leases",
    "claim_expired",
    "list_jobs",
    "count_jobs",
    "purge_jobs",
    "get_value",
    "set_value",
    "delete_value",
    "set_value_if_locked",
    "acquire_lock",
    "release_lock",
)

_F = TypeVar("_F", bound=Callable[..., Any])


def _timed(operation: str, method: _F) -> _F:
    observe = STORE_SECONDS.labels(operation).observe

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            observe(time.perf_counter() - started)

    return timed  # type: ignore[return-value]


class Store(abc.ABC):
    """Atomic operations over jobs, small expiring values and named locks.

    Jobs and values returned are copies: changing them changes nothing stored.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Time the operations of every store implementation (a direct subclass), so a new
        backend is measured without touching its code; subclasses of those are not timed
        again."""
        super().__init_subclass__(**kwargs)
        if Store in cls.__bases__:
            for name in TIMED_OPERATIONS:
                if name in cls.__dict__:
                    setattr(cls, name, _timed(name, cls.__dict__[name]))

    # -- jobs ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim_job(
        self, key: str, kind: str, payload: str, owner: str, lease_until: float, now: float
    ) -> tuple[bool, Job]:
        """Insert a RUNNING job owned by ``owner`` unless ``key`` exists.

        Returns ``(True, new_job)`` when this call created it, ``(False, existing_job)`` otherwise.
        The new job has ``attempts == 0`` and ``created_at == updated_at == now``.
        """

    @abc.abstractmethod
    def get_job(self, key: str) -> Job | None:
        """The job stored under ``key``, or None."""

    @abc.abstractmethod
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
        """Compare-and-set: change the given fields only if the job is in one of ``expect_states``
        (and owned by ``expect_owner`` when that is given). Returns whether it changed.

        Fields left at their default stay as they are: ``None`` for ``state``, ``lease_until`` and
        ``attempts``, :data:`UNSET` for the nullable ``owner``, ``reply`` and ``last_error``
        (pass ``None`` to clear those). A successful update sets ``updated_at`` to ``now``.
        A missing job, or an empty ``expect_states``, matches nothing.
        """

    @abc.abstractmethod
    def renew_leases(self, owner: str, keys: list[str], lease_until: float) -> int:
        """Set ``lease_until`` of the non-final jobs in ``keys`` still owned by ``owner``.

        Returns how many were renewed; the others were lost (taken over, or finished).
        """

    @abc.abstractmethod
    def claim_expired(self, owner: str, now: float, lease_until: float, limit: int) -> list[Job]:
        """Take over up to ``limit`` non-final jobs whose lease ended before ``now``, oldest first:
        set their owner and new lease atomically, so two workers never take the same job.

        "Oldest" is the smallest old ``lease_until`` (the job that has waited longest), ties in
        ``key`` order (as a Redis sorted set orders them); the result is in that order. State and
        ``attempts`` stay as they are; ``updated_at`` becomes ``now``.
        """

    def release_leases(self, owner_prefix: str, now: float) -> int:
        """End now the leases of the non-final jobs whose owner starts with ``owner_prefix``,
        so :meth:`claim_expired` takes them over at once instead of when they run out.

        For a process that is known to be dead (gunicorn's master calls it from ``child_exit``
        with ``"<host>:<pid>:"``, see ``app.jobs.leases.new_owner_id``). Sets ``lease_until`` to
        ``now`` where it is later, and nothing else (owner, state, ``updated_at`` stay). An empty
        prefix matches nothing. Returns how many leases it ended.

        Not abstract so that a store written before it existed still loads; the caller then
        falls back on the leases running out.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot release leases early")

    @abc.abstractmethod
    def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]:
        """Up to ``limit`` jobs in ``state``, least recently updated first."""

    def count_jobs(self, state: JobState, limit: int = 10_000) -> int:
        """How many jobs are in ``state``, counting at most ``limit`` (for /metrics and the
        console). Implementations may answer without loading the jobs."""
        return len(self.list_jobs(state, limit))

    @abc.abstractmethod
    def purge_jobs(self, finished_before: float) -> int:
        """Delete final jobs last updated before ``finished_before`` (dead ones are kept).

        Returns how many were deleted.
        """

    # -- small values with an optional expiry (access tokens, kf cursors) ----------------------
    @abc.abstractmethod
    def get_value(self, key: str, now: float) -> str | None:
        """The value, or None when absent or expired."""

    @abc.abstractmethod
    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None:
        """Store ``value``, replacing any earlier one and its expiry (``None``: never expires)."""

    @abc.abstractmethod
    def delete_value(self, key: str, if_value: str | None = None) -> bool:
        """Delete the key (only while it still holds ``if_value`` when that is given).

        Returns whether something was deleted. Expiry is not consulted (there is no ``now``).
        """

    @abc.abstractmethod
    def set_value_if_locked(
        self, key: str, value: str, lock_name: str, owner: str, now: float
    ) -> bool:
        """Store ``value`` (never expiring) only while ``owner`` holds the lock ``lock_name``
        (held, and not expired at ``now``), in one atomic step; returns whether it did.

        A holder that just lost its lock cannot then overwrite what the new holder wrote (the
        微信客服 cursor: the old holder would move it back)."""

    # -- named locks with expiry (single-flight token refresh, one kf pull per account) --------
    @abc.abstractmethod
    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool:
        """Take the lock if it is free, expired, or already ours (then extend it to ``until``)."""

    @abc.abstractmethod
    def release_lock(self, name: str, owner: str) -> bool:
        """Release the lock if ``owner`` holds it (even expired); returns whether it did."""

    def health(self) -> dict[str, str]:
        """For ``/healthz``: ``{"store": "ok"}``, or ``"busy"`` when a write could not start now
        (another process holds the store), plus anything else an operator should see. Must
        answer within a fraction of a second, never waiting long for a lock."""
        return {"store": "ok"}

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release connections. Safe to call more than once."""
