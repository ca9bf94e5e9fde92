"""Answers that travel through the API: the outbox, its retries, dead letters, crash recovery.

A job reaches the outbox when its handler missed the reply deadline (app callbacks) or always
(微信客服, which has no passive reply). The outbox entry (``Job.reply``) is JSON
``{"to": user, "open_kfid": …, "messages": [api message, …]}``; each message is removed from it as
soon as WeCom accepted it, so a retry or a recovering worker never sends a part twice.

Retries: the API client already retries transient failures for a few seconds. When a delivery
still fails, the job goes back to the outbox with ``lease_until`` set to the next attempt time
(backoff 5 s, 10 s, 20 s … up to 10 min); the background loop of any worker picks it up. After
``WECOM_DELIVERY_ATTEMPTS`` failures, or at once for a refusal or a configuration error, the job
is dead: ``flask deliveries list`` shows it and ``flask deliveries resend`` tries again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from app.infra import metrics
from app.infra.api.errors import WeComAPIError
from app.infra.store import Job, JobState, Store
from app.jobs.failures import describe, is_shutdown

log = logging.getLogger(__name__)

_UNFINISHED = (JobState.RUNNING, JobState.DEFERRED)
E = TypeVar("E")


def retry_delay(attempts: int) -> float:
    return min(5.0 * 2 ** max(attempts - 1, 0), 600.0)


class DeliveryError(Exception):
    """Delivery cannot even be attempted (no secret configured, unknown endpoint)."""


class AnswerKind(Protocol):
    """What a kind of job ("app", "kf") needs from its module: how to answer, how to send."""

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Run the handler for a stored job payload; return the outbox entry, None for no answer.
        Raises when the handler fails."""

    def send(self, job: Job, entry: dict[str, Any], message: dict[str, Any]) -> None:
        """Send one message of an outbox entry through the API; raise on failure."""


class Outbox:
    """Delivers outbox jobs, finishes late answers, recovers orphaned work."""

    def __init__(
        self,
        store: Store,
        owner: str,
        kinds: dict[str, AnswerKind],
        max_attempts: int,
        clock: Callable[[], float] = time.time,
        handler_attempts: int = 3,
        lease_seconds: float = 30.0,
        holding: Callable[[str], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.kinds = kinds
        self.max_attempts = max_attempts  # deliveries (WECOM_DELIVERY_ATTEMPTS)
        self.handler_attempts = handler_attempts  # handler starts (WECOM_HANDLER_ATTEMPTS)
        self.lease_seconds = lease_seconds
        #: Keeps a job's lease renewed while the block runs (LeaseKeeper.holding).
        self.holding = holding or (lambda key: contextlib.nullcontext())
        self.clock = clock

    def finish(self, key: str, entry: dict[str, Any] | None, error: str | None = None) -> JobState:
        """The handler of a job we own (RUNNING, or DEFERRED past its reply deadline) has
        finished and its answer goes through the API: deliver it, or record that there is none
        or that the handler failed. Every 微信客服 answer comes here; an app's only when late."""
        if error is not None:
            log.error("job %s recorded as failed: %s", key, error)
            changes: dict[str, Any] = {"state": JobState.DEAD, "last_error": error}
        elif entry is None:
            changes = {"state": JobState.DONE}
        else:
            # From here ``attempts`` counts deliveries.
            changes = {
                "state": JobState.OUTBOX,
                "reply": json.dumps(entry, ensure_ascii=False),
                "attempts": 0,
                "lease_until": self.clock() + self.lease_seconds,
            }
        moved = self.store.update_job(
            key, expect_states=_UNFINISHED, expect_owner=self.owner, now=self.clock(), **changes
        )
        job = self.store.get_job(key)
        if not moved or job is None:
            log.warning("job %s changed hands before its answer was recorded", key)
            return job.state if job else JobState.DONE
        if job.state != JobState.OUTBOX:
            return job.state
        return self.deliver(job)

    def recover(self, job: Job) -> JobState:
        """Finish a job taken over from an expired lease: run its handler again when it never
        finished (at-least-once, as WeCom itself is), then deliver.

        An unfinished job's ``attempts`` counts the handler's restarts (its claim was the first
        start), stored before each restart: a handler that kills its worker every time (a CPU
        loop past gunicorn's timeout) ends as a dead letter after ``handler_attempts`` starts.
        """
        with self.holding(job.key):
            return self._recover(job)

    def _recover(self, job: Job) -> JobState:
        if job.state == JobState.OUTBOX and job.reply is not None:
            return self.deliver(job)
        starts = job.attempts + 1  # the handler has started this many times already
        if starts >= self.handler_attempts:
            reason = (
                f"handler started {starts} times without finishing (its worker stopped or died "
                f"each time); WECOM_HANDLER_ATTEMPTS={self.handler_attempts}"
            )
            dead = self.store.update_job(
                job.key,
                expect_states=(job.state,),
                expect_owner=self.owner,
                state=JobState.DEAD,
                attempts=starts,
                last_error=reason,
                now=self.clock(),
            )
            if not dead:
                return self._lost(job)
            log.error("job %s recorded as failed: %s", job.key, reason)
            return JobState.DEAD
        moved = self.store.update_job(
            job.key,
            expect_states=(job.state,),
            expect_owner=self.owner,
            state=JobState.DEFERRED,
            attempts=starts,
            now=self.clock(),
        )
        if not moved:
            return self._lost(job)
        try:
            kind = self.kinds[job.kind]
            entry = kind.answer(json.loads(job.payload))
        except BaseException as exc:  # whatever a handler raises: see app.jobs.failures
            if is_shutdown(exc):
                raise
            log.exception("handler failed again while recovering %s", job.key)
            return self.finish(job.key, None, describe(exc))
        return self.finish(job.key, entry)

    def deliver(self, job: Job) -> JobState:
        """Send what is left of ``job``'s answer; the job must be OUTBOX and owned by us.

        Before each send, one compare-and-set renews the lease and records what is left to
        send: a worker that lost the job (its lease ran out, another worker took it over) stops
        there, before sending anything more, and a retry never repeats a part already sent.
        """
        entry = json.loads(job.reply or "{}")
        messages: list[dict[str, Any]] = entry.get("messages") or []
        kind = self.kinds.get(job.kind)
        if kind is None:
            return self._dead(job, f"no sender for job kind {job.kind!r}")
        while messages:
            entry["messages"] = messages
            reply = json.dumps(entry, ensure_ascii=False)
            if not self._update(job, reply=reply, lease_until=self.clock() + self.lease_seconds):
                return self._lost(job)
            try:
                kind.send(job, entry, messages[0])
            except DeliveryError as exc:
                return self._dead(job, str(exc))
            except WeComAPIError as exc:
                return self._failed(job, entry, messages, exc)
            except BaseException as exc:  # a bug must not lose the job: record it
                if is_shutdown(exc):
                    raise
                log.exception("delivery of %s crashed", job.key)
                return self._dead(job, f"{type(exc).__name__}: {exc}")
            messages.pop(0)
        if not self._update(job, state=JobState.DONE, last_error=None):
            return self._lost(job)
        metrics.delivered(job.kind)
        log.info("delivered the answer to %s through the API", job.key)
        return JobState.DONE

    def _failed(
        self, job: Job, entry: dict[str, Any], messages: list[dict[str, Any]], exc: WeComAPIError
    ) -> JobState:
        attempts = job.attempts + 1
        entry["messages"] = messages
        reply = json.dumps(entry, ensure_ascii=False)
        if exc.retryable and attempts < self.max_attempts:
            delay = retry_delay(attempts)
            log.warning(
                "delivery of %s failed (attempt %d of %d), retrying in %.0f s: %s",
                job.key,
                attempts,
                self.max_attempts,
                delay,
                exc,
            )
            metrics.delivery_failed(job.kind, "retry", exc.errcode)
            if not self._update(
                job,
                owner=None,
                lease_until=self.clock() + delay,
                attempts=attempts,
                reply=reply,
                last_error=str(exc),
            ):
                return self._lost(job)
            return JobState.OUTBOX
        reason = f"gave up after {attempts} attempts" if exc.retryable else "not retried"
        log.error("delivery of %s failed, %s: %s", job.key, reason, exc)
        metrics.delivery_failed(job.kind, "dead", exc.errcode)
        if not self._update(
            job, state=JobState.DEAD, attempts=attempts, reply=reply, last_error=str(exc)
        ):
            return self._lost(job)
        return JobState.DEAD

    def _dead(self, job: Job, reason: str) -> JobState:
        log.error("delivery of %s recorded as failed: %s", job.key, reason)
        metrics.delivery_failed(job.kind, "dead", None)
        if not self._update(job, state=JobState.DEAD, attempts=job.attempts + 1, last_error=reason):
            return self._lost(job)
        return JobState.DEAD

    def _update(self, job: Job, **changes: Any) -> bool:
        """Compare-and-set on an OUTBOX job we own; False when it is no longer ours."""
        return self.store.update_job(
            job.key,
            expect_states=(JobState.OUTBOX,),
            expect_owner=self.owner,
            now=self.clock(),
            **changes,
        )

    def _lost(self, job: Job) -> JobState:
        """Another worker owns the job now (our lease ran out): stop, it finishes the job."""
        log.warning("job %s changed hands; stopping here, its new owner finishes it", job.key)
        current = self.store.get_job(job.key)
        return current.state if current is not None else JobState.DONE
