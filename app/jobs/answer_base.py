"""What the "app" and "kf" answer kinds share: the endpoints by name, how to get an endpoint's
API client, the store (to mark a message before its first send) and the clock."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from app.infra.api.client import WeComClient
from app.infra.store import Job, JobState, Store
from app.jobs.outbox import DeliveryError
from app.routing.endpoints import Endpoint

ClientFor = Callable[[Endpoint], WeComClient | None]


class AnswerKindBase:
    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        client_for: ClientFor,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints = endpoints
        self.client_for = client_for
        self.store = store
        self.clock = clock

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint a stored job names; a DeliveryError once it is no longer configured."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise DeliveryError(f"endpoint {name!r} is no longer configured") from None

    def mark_before_send(
        self, job: Job, entry: dict[str, Any], message: dict[str, Any], name: str, value: Any
    ) -> None:
        """Save ``name: value`` on ``message`` in the stored outbox entry before its first send,
        as a compare-and-set on the job we own: a later try, or another worker taking the job
        over, then knows an earlier try may have reached WeCom. ``message`` is the outbox's own
        dict, so the outbox keeps the mark when it saves progress. A DeliveryError when the job
        is no longer ours (nothing is sent then)."""
        message[name] = value
        moved = self.store.update_job(
            job.key,
            expect_states=(JobState.OUTBOX,),
            expect_owner=job.owner,
            reply=json.dumps(entry, ensure_ascii=False),
            now=self.clock(),
        )
        if not moved:
            message.pop(name, None)
            raise DeliveryError(f"job {job.key} changed hands before its answer was sent")
