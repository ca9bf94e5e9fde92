"""Answer every app callback within its reply budget, once, whatever the handler does.

For each callback:

1. The message is recorded in the store under its dedup key (a RUNNING job) before anything
   else, so an accepted message survives a worker that dies.
2. A callback whose key exists is a retry: it never runs the handler. It waits (within its own
   budget) while the first run is still working, then repeats the passive reply if there was one,
   or answers empty when the answer went, or will go, through the API.
3. Otherwise the handler runs in its own greenlet (a thread under ``flask run``). If it answers
   within the budget, the answer is the passive reply. If not, the job becomes DEFERRED before
   the empty answer leaves, and the handler's answer goes through the outbox when it comes.

Why the record comes before the handler, even for a callback that will be answered passively
(issue 9 asked whether it could wait until an empty answer is due). Skipping it would lean on
WeCom's retry for everything that goes wrong before the answer leaves, and that retry cannot
carry three guarantees the README makes:

* A worker (or host) that dies while a handler runs: with the record, another worker's lease
  sweep finds the RUNNING job once its lease runs out and delivers the answer through the API
  (bounded by WECOM_HANDLER_ATTEMPTS). Without it, the message exists only in WeCom's retry,
  which comes 5 s later, at most three times, and only if a worker is up to take it then; after
  a longer outage (a deploy, a host reboot) it is lost, which the README says never happens.
* Retries across workers and hosts: a retry lands on any worker. Recognising it needs a record
  that is already there when it lands; with the record written only at the end, a retry arriving
  while the first run is still inside its budget (a queue in front of the service, a WeCom
  retry sent early) would run the handler a second time, and its answer could go out twice.
  Guessing "fresh, cannot be a retry" from CreateTime ties dedup to the host clock agreeing with
  WeCom's within a second.
* Handlers with side effects (an order lookup that books, a ticket opened) run once per message,
  not once per delivery attempt.

So the write stays, and is made cheap instead: under gevent the SQLite store commits the
concurrent writes of a worker together (:mod:`app.infra.store.sqlite_batch`), so the claim and
the final state each cost one statement inside a shared transaction. Measured side by side
(bench/README.md): with it, a worker on the SQLite store used no more CPU per callback than one
on the in-memory store (0.84 against 0.87 ms), so skipping a write would buy nothing
measurable for guarantees that would otherwise depend on WeCom's retries and clock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.infra.greenlets import gevent_patched
from app.infra.metrics import note_outcome
from app.infra.store import JobState, Store, patience
from app.jobs.app_answers import outbox_entry, run_handler
from app.jobs.failures import describe, is_shutdown
from app.jobs.leases import LeaseKeeper
from app.jobs.outbox import Outbox
from app.routing.endpoints import Endpoint
from app.wecom import Reply, dedup_key

log = logging.getLogger(__name__)

RETRY_POLL_SECONDS = 0.05
#: How long a callback waits for a store that another process holds before it is refused
#: (503: WeCom sends it again), and the least its last write may wait (normal contention).
CLAIM_PATIENCE = 1.0
WRITE_PATIENCE = 0.5


@dataclass
class _Run:
    """One handler run, shared by the request that waits for it and the greenlet doing it."""

    # Looked up at call time: gevent may have patched threading after this module was imported.
    done: threading.Event = field(default_factory=lambda: threading.Event())
    lock: threading.Lock = field(default_factory=lambda: threading.Lock())
    finished: bool = False
    deferred: bool = False
    reply: Reply | None = None
    error: str | None = None


def start_handler(name: str, target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` beside the request: a greenlet where gevent runs the process (a
    fifth of the cost of gevent's patched ``threading.Thread``, which makes a greenlet too and
    registers a thread object for it), a daemon thread under a threaded server (``flask run``)."""
    if gevent_patched():
        import gevent

        gevent.spawn(target, *args)
    else:
        threading.Thread(target=target, args=args, daemon=True, name=name).start()


class DeadlineResponder:
    def __init__(
        self,
        store: Store,
        loop: LeaseKeeper,
        outbox: Outbox,
        deadline: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.loop = loop
        self.outbox = outbox
        self.deadline = deadline
        self.clock = clock  # wall time, for the store's records
        self.monotonic = monotonic  # for the budget: ``received_at`` comes from this clock
        #: Handler runs of this process by job key, so a retry landing here waits on the event.
        self._runs_here: dict[str, _Run] = {}

    @staticmethod
    def job_key(endpoint: Endpoint, message: dict[str, Any]) -> str:
        return f"{endpoint.name}:{dedup_key(message)}"

    def remaining(self, received_at: float) -> float:
        """Seconds left of the budget of a callback that arrived at ``received_at``."""
        return max(self.deadline - (self.monotonic() - received_at), 0.0)

    @staticmethod
    def render(endpoint: Endpoint, message: dict[str, Any], reply: Reply) -> str:
        """The plaintext passive reply XML, addressed back to the message's sender."""
        return reply.render(
            to_user=str(message.get("FromUserName", "")),
            from_user=endpoint.receive_id or str(message.get("ToUserName", "")),
            create_time=int(time.time()),
        )

    @staticmethod
    def encrypt(endpoint: Endpoint, plain: str) -> str:
        return endpoint.crypto.encrypt_reply(plain)

    def respond(
        self, endpoint: Endpoint, message: dict[str, Any], received_at: float
    ) -> str | None:
        """The encrypted passive reply, or None for an empty 200."""
        key = self.job_key(endpoint, message)
        payload = json.dumps({"endpoint": endpoint.name, "message": message}, ensure_ascii=False)
        with patience(min(CLAIM_PATIENCE, max(self.remaining(received_at), WRITE_PATIENCE))):
            created, job = self.store.claim_job(
                key, "app", payload, self.loop.owner, self.loop.lease_until(), self.clock()
            )
        if not created:
            note_outcome("retry")
            log.info("retried callback %s (first run is %s)", key, job.state.value)
            return self._answer_retry(endpoint, key, received_at)

        run = _Run()
        self._runs_here[key] = run
        self.loop.hold(key)
        start_handler(f"wecom-handler-{key}", self._execute, key, endpoint, message, run)
        run.done.wait(self.remaining(received_at))
        with run.lock:
            run.deferred = not run.finished
        # Past this point the answer is due: a store that stays locked turns it into a 503.
        with patience(max(self.remaining(received_at), WRITE_PATIENCE)):
            return self._conclude(endpoint, key, message, run)

    def _conclude(
        self, endpoint: Endpoint, key: str, message: dict[str, Any], run: _Run
    ) -> str | None:
        if run.deferred:
            note_outcome("deferred")
            self._move(key, JobState.DEFERRED)
            log.info(
                "handler for %s missed the %.1f s budget; its answer will go through the API",
                key,
                self.deadline,
            )
            return None
        try:
            return self._answer_in_time(endpoint, key, message, run)
        finally:
            self._runs_here.pop(key, None)
            self.loop.release(key)

    def _execute(self, key: str, endpoint: Endpoint, message: dict[str, Any], run: _Run) -> None:
        reply, error = None, None
        try:
            reply = run_handler(endpoint, message)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: see app.jobs.failures
            if is_shutdown(exc):
                self._abandon(key, run)
                raise
            log.exception(
                "handler failed on endpoint %s for MsgId=%s MsgType=%s Event=%s",
                endpoint.name,
                message.get("MsgId", "-"),
                message.get("MsgType", "-"),
                message.get("Event", "-"),
            )
            error = describe(exc)
        with run.lock:
            run.reply, run.error, run.finished = reply, error, True
            late = run.deferred
        run.done.set()
        if not late:
            return
        try:
            self.outbox.finish(key, None if error else outbox_entry(message, reply), error)
        except BaseException as exc:
            if is_shutdown(exc):
                raise
            log.exception("could not record the late answer of %s; recovery will retry", key)
        finally:
            self._runs_here.pop(key, None)
            self.loop.release(key)

    def _abandon(self, key: str, run: _Run) -> None:
        """The handler's greenlet or the process is stopping: stop renewing the job's lease so
        another worker takes it over, and let the waiting request answer now."""
        log.warning("handler for %s was stopped with its worker; another worker will take it", key)
        self._runs_here.pop(key, None)
        self.loop.release(key)
        run.done.set()

    def _move(self, key: str, state: JobState, **changes: Any) -> bool:
        """Compare-and-set a RUNNING job this process owns; False (and a log line) if it is no
        longer ours: another worker took it over and answers it."""
        moved = self.store.update_job(
            key,
            expect_states=(JobState.RUNNING,),
            expect_owner=self.loop.owner,
            state=state,
            now=self.clock(),
            **changes,
        )
        if not moved:
            log.warning("job %s changed hands before it was answered; leaving it to its owner", key)
        return moved

    def _answer_in_time(
        self, endpoint: Endpoint, key: str, message: dict[str, Any], run: _Run
    ) -> str | None:
        if run.error is not None:
            note_outcome("failed")
            self._move(key, JobState.DEAD, last_error=run.error)
            return None
        if run.reply is None:
            self._move(key, JobState.DONE)
            return None
        try:
            plain = self.render(endpoint, message, run.reply)
        except Exception as exc:
            log.exception("cannot render the reply for %s", key)
            note_outcome("failed")
            self._move(key, JobState.DEAD, last_error=f"render failed: {exc}")
            return None
        if not self._move(key, JobState.PASSIVE, reply=json.dumps({"xml": plain})):
            return None  # the new owner answers; a passive reply now would answer twice
        return self.encrypt(endpoint, plain)

    def _answer_retry(self, endpoint: Endpoint, key: str, received_at: float) -> str | None:
        local = self._runs_here.get(key)
        while True:
            job = self.store.get_job(key)
            if job is None:  # purged long ago: a very late retry; nothing to add
                return None
            if job.state == JobState.PASSIVE and job.reply:
                return self.encrypt(endpoint, json.loads(job.reply)["xml"])
            if job.state != JobState.RUNNING:
                return None  # the answer went, or goes, through the API (or there is none)
            wait = min(self.remaining(received_at), RETRY_POLL_SECONDS)
            if wait <= 0:
                return None
            if local is not None and not local.done.is_set():
                local.done.wait(wait)
            else:
                time.sleep(wait)
