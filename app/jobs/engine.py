"""One worker process's job machinery, wired from the settings: the store, leases, the outbox,
the deadline responder and the 微信客服 puller.

It belongs to one process: gunicorn forks workers after the app is built, so the web layer makes
an engine lazily in each worker (a store connection or a thread must not cross a fork).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.infra.store import Job, JobState, open_store
from app.jobs.app_answers import AppAnswers
from app.jobs.clients import ApiClients
from app.jobs.deadline import DeadlineResponder
from app.jobs.kf_answers import KfAnswers
from app.jobs.kf_puller import KfPuller, is_doorbell
from app.jobs.kf_sync import KfSync
from app.jobs.leases import LeaseKeeper, new_owner_id
from app.jobs.outbox import Outbox
from app.routing.endpoints import Endpoint
from app.settings import Settings

log = logging.getLogger(__name__)


class JobEngine:
    def __init__(self, settings: Settings, endpoints: dict[str, Endpoint]) -> None:
        self.store = open_store(settings.store_url, prefix=settings.redis_prefix)
        self.owner = new_owner_id()
        self.clients = ApiClients(self.store, settings.api_base, settings.api_timeout)
        self.leases = LeaseKeeper(
            self.store,
            self.owner,
            recover=lambda job: self.outbox.recover(job),
            lease_seconds=settings.lease_seconds,
        )
        kf_answers = KfAnswers(endpoints, self.clients.for_kf, self.store)
        self.outbox = Outbox(
            self.store,
            self.owner,
            {"app": AppAnswers(endpoints, self.clients.for_app, self.store), "kf": kf_answers},
            max_attempts=settings.delivery_attempts,
            handler_attempts=settings.handler_attempts,
            lease_seconds=settings.lease_seconds,
            holding=self.leases.holding,
        )
        sync = KfSync(
            self.store,
            self.leases,
            self.outbox,
            kf_answers,
            endpoints,
            self.clients.for_kf,
            history_seconds=settings.kf_history_seconds,
        )
        self.puller = KfPuller(self.store, self.leases, sync, lease_seconds=settings.lease_seconds)
        self.responder = DeadlineResponder(
            self.store, self.leases, self.outbox, settings.reply_deadline
        )

    def start(self) -> None:
        """Start the lease keeper and the kf sweep; a no-op for those already running."""
        self.leases.start()
        self.puller.start()

    @property
    def running(self) -> bool:
        return self.leases.running and self.puller.running

    def stop(self) -> None:
        self.leases.stop()
        self.puller.stop()

    def respond(
        self, endpoint: Endpoint, message: dict[str, Any], received_at: float
    ) -> str | None:
        """The encrypted passive reply for one callback, or None for an empty answer.

        A kf_msg_or_event is a doorbell: answered empty at once, the pull runs in the background.
        """
        if is_doorbell(message):
            self.puller.notify(endpoint, message)
            return None
        return self.responder.respond(endpoint, message, received_at)

    def take_dead_job(self, key: str) -> Job | None:
        """Move a dead job back to the outbox, owned by this process, for an immediate retry."""
        moved = self.store.update_job(
            key,
            expect_states=(JobState.DEAD,),
            state=JobState.OUTBOX,
            owner=self.owner,
            lease_until=self.leases.lease_until(),
            attempts=0,
            now=time.time(),
        )
        return self.store.get_job(key) if moved else None
