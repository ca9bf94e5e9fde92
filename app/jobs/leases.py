"""Leases: each worker renews the jobs it works on and takes over jobs whose lease ran out.

A job's ``lease_until`` doubles as its next attempt time (see :mod:`app.infra.store.base`), so the
same sweep picks up the work of a dead worker and a delivery whose retry is due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from app.infra.store import Job, JobState, Store
from app.jobs.failures import is_shutdown
from app.jobs.ticker import RunsOnTicker, Ticker
from app.settings import SettingError

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
SWEEP_SECONDS = 1.0
RETENTION_SECONDS = 24 * 3600.0


def check_timestamp_window(window: float) -> None:
    """A callback older than the dedup records would run its handler again when replayed: the
    timestamp window (``WECOM_TIMESTAMP_WINDOW``) must not be longer than their retention."""
    if window > RETENTION_SECONDS:
        raise SettingError(
            "WECOM_TIMESTAMP_WINDOW",
            f"must be at most {RETENTION_SECONDS:g} seconds, how long retried callbacks are "
            f"recognised; got {window:g}",
        )


def new_owner_id() -> str:
    """Names this process in leases: host, pid and a random part (pids are reused)."""
    return f"{owner_prefix(os.getpid())}{uuid.uuid4().hex[:8]}"


def owner_prefix(pid: int) -> str:
    """The start of the owner ids of process ``pid`` on this host (for Store.release_leases)."""
    return f"{socket.gethostname()}:{pid}:"


class LeaseKeeper(RunsOnTicker):
    """Per worker process: renews the leases of work in progress, takes over work whose lease
    ran out (a dead worker, a retry that is due), and purges old finished jobs."""

    def __init__(
        self,
        store: Store,
        owner: str,
        recover: Callable[[Job], None],
        lease_seconds: float = LEASE_SECONDS,
        sweep_seconds: float = SWEEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.owner = owner
        self.recover = recover
        self.lease_seconds = lease_seconds
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self.held: set[str] = set()  # keys of jobs this process is working on
        self._held_lock = threading.Lock()
        self._ticker = Ticker("wecom-leases", sweep_seconds, self._tick)
        self._last_renew = 0.0
        self._last_purge = 0.0

    # -- the set of jobs this process works on -----------------------------------------------
    def hold(self, key: str) -> None:
        with self._held_lock:
            self.held.add(key)

    def release(self, key: str) -> None:
        with self._held_lock:
            self.held.discard(key)

    def lease_until(self) -> float:
        return self.clock() + self.lease_seconds

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        """Keep ``key``'s lease while the block runs, also in a process whose sweep is not
        running (``flask deliveries resend``): there a renew-only loop runs meanwhile."""
        self.hold(key)
        renewer = None
        if not self.running:
            renewer = Ticker(f"wecom-renew-{key}", self.lease_seconds / 3, self.renew)
            renewer.start()
        try:
            yield
        finally:
            if renewer is not None:
                renewer.stop()
            self.release(key)

    def _tick(self) -> None:
        now = self.clock()
        if now - self._last_renew >= self.lease_seconds / 3:
            self.renew()
            self._last_renew = now
        self.sweep()
        if now - self._last_purge > 3600:
            self.store.purge_jobs(now - RETENTION_SECONDS)
            self._last_purge = now

    def renew(self) -> None:
        with self._held_lock:
            keys = list(self.held)
        if keys:
            self.store.renew_leases(self.owner, keys, self.lease_until())

    def sweep(self, limit: int = 20) -> int:
        """Take over expired work and start it; returns how many jobs were taken."""
        jobs = self.store.claim_expired(self.owner, self.clock(), self.lease_until(), limit)
        for job in jobs:
            self.hold(job.key)
            threading.Thread(
                target=self._recover_one, args=(job,), daemon=True, name=f"wecom-recover-{job.key}"
            ).start()
        return len(jobs)

    def _recover_one(self, job: Job) -> None:
        try:
            if job.state != JobState.OUTBOX:
                log.warning(
                    "taking over %s (%s, its worker stopped or died)", job.key, job.state.value
                )
            self.recover(job)
        except BaseException as exc:  # whatever a handler raised: this thread is ours
            if is_shutdown(exc):
                raise
            log.exception("recovery of %s failed", job.key)
        finally:
            self.release(job.key)
