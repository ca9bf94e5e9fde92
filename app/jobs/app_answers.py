"""Answers for a self-built app (应用): run its router, and send late answers with message/send.

message/send has no idempotency key, so before a message is first sent the time of that try is
stored in its outbox entry (``first_try``). Every later try of it (the client's retry after a try
that may have reached WeCom, the outbox's own retry, a worker that took the job over) then asks
WeCom to drop a repeat of the same message within an interval reaching back to that first try;
see ``WeComClient.send_message``. The mark is dropped again when every try surely failed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from app.infra.api.errors import WeComAPIError
from app.infra.store import Job
from app.jobs.answer_base import AnswerKindBase
from app.jobs.outbox import DeliveryError
from app.routing.endpoints import Endpoint
from app.routing.time_limit import dispatch_with_time_limit
from app.wecom import Reply, TextReply, split_utf8, to_reply

log = logging.getLogger(__name__)

#: message/send refuses (45002) or truncates text over 2048 bytes: longer answers go in parts.
TEXT_LIMIT = 2048
#: At most this many messages carry one late answer; the last one then ends with ELLIPSIS.
MAX_PARTS = 5
ELLIPSIS = "…"
#: Outbox-message field: when a try of this message that may have reached WeCom was first made.
FIRST_TRY = "first_try"


def run_handler(endpoint: Endpoint, message: dict[str, Any]) -> Reply | None:
    """The endpoint's router on one message, its return value made a reply (None: no answer)."""
    value = dispatch_with_time_limit(endpoint.router.dispatch, message, endpoint.handler_timeout)
    return to_reply(value)


def outbox_entry(message: dict[str, Any], reply: Reply | None) -> dict[str, Any] | None:
    """The message/send payloads that carry ``reply`` to the member who wrote ``message``."""
    if reply is None:
        return None
    if isinstance(reply, TextReply):
        # to_api_message() cleans the text (no lone surrogates) before it is cut into parts.
        content = reply.to_api_message()["text"]["content"]
        messages = [{"msgtype": "text", "text": {"content": part}} for part in text_parts(content)]
    else:
        api_message = reply.to_api_message()
        if api_message is None:
            log.warning(
                "a %s reply has no API equivalent; it can only be a passive reply",
                type(reply).__name__,
            )
            return None
        messages = [api_message]
    if not messages:
        return None
    return {"to": str(message.get("FromUserName", "")), "messages": messages}


def text_parts(content: str) -> list[str]:
    """``content`` in message/send-sized parts, at most :data:`MAX_PARTS` of them: a longer
    answer is cut, and its last part ends with "…" (a 1 MB answer is 5 messages, not 500)."""
    # Every character is at least one byte: this keeps enough for the parts, and no more.
    head = content[: MAX_PARTS * TEXT_LIMIT + 1]
    parts = split_utf8(head, TEXT_LIMIT)
    if len(parts) <= MAX_PARTS and len(head) == len(content):
        return parts
    last = split_utf8(parts[MAX_PARTS - 1], TEXT_LIMIT - len(ELLIPSIS.encode("utf-8")))[0]
    log.warning(
        "a late answer of %d characters is cut to %d messages (the last ends with …)",
        len(content),
        MAX_PARTS,
    )
    return [*parts[: MAX_PARTS - 1], last + ELLIPSIS]


class AppAnswers(AnswerKindBase):
    """The "app" job kind: jobs from self-built-app callbacks."""

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        endpoint = self.endpoint(payload["endpoint"])
        message = payload["message"]
        return outbox_entry(message, run_handler(endpoint, message))

    def send(self, job: Job, entry: dict[str, Any], message: dict[str, Any]) -> None:
        endpoint = self.endpoint(json.loads(job.payload)["endpoint"])
        client = self.client_for(endpoint)
        if client is None:
            raise DeliveryError(
                f"endpoint {endpoint.name} has no API secret and agent id "
                "(WECOM_SECRET, WECOM_AGENT_ID): a late answer cannot be sent"
            )
        earlier: float | None = message.get(FIRST_TRY)
        if earlier is None:
            self.mark_before_send(job, entry, message, FIRST_TRY, self.clock())
        payload = {k: v for k, v in message.items() if k != FIRST_TRY}
        reached: list[WeComAPIError] = []
        try:
            client.send_message(
                {"touser": entry["to"], **payload},
                maybe_sent_at=earlier,
                on_maybe_reached=reached.append,
            )
        except WeComAPIError:
            if earlier is None and not reached:
                message.pop(FIRST_TRY, None)  # WeCom surely took none of the tries
            raise
