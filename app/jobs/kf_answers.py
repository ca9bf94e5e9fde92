"""The "kf" job kind: run the kf router on one kf/sync_msg item, send its answer.

Every message of an answer gets a msgid derived from the job key and its position, so however
often the outbox retries it (a lost answer, a crashed worker, a recovered job), WeCom sees the same
msgid, which it keeps unique per kf account: a repeat is refused instead of delivered twice.

What WeCom answers to a repeated msgid is not documented; the fake answers 40058 (invalid
parameter), and 41050 (invalid code) to a send_msg_on_event whose single-use code was used. Such
an answer is therefore taken as "already delivered" only when an earlier try of that very message
may have reached WeCom: a try the API client reported through its ``on_maybe_reached`` hook (the
connection broke after the request left, a timeout, an HTTP 5xx), or one from before a crash (the
message is marked ``maybe_sent`` in the store before it is first sent). Otherwise it is a real
error. Retries of transient failures are the client's; the outbox retries later still.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from app.infra.api.client import WeComClient
from app.infra.api.errors import WeComAPIError
from app.infra.api.retry import MaybeReached
from app.infra.store import Job
from app.jobs.answer_base import AnswerKindBase
from app.jobs.outbox import DeliveryError
from app.routing.time_limit import dispatch_with_time_limit
from app.wecom import split_utf8, truncate_utf8
from app.wecom.kf_items import CUSTOMER, event_type, has_welcome_code, origin_of
from app.wecom.kf_messages import TEXT_LIMIT, KfMessage, to_kf_messages

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

#: Our kf/send_msg msgids start with this (≤32 chars of [0-9A-Za-z_-] in all).
MSGID_PREFIX = "wcb_"
#: WeCom lets us send at most 5 messages per customer message (95001 beyond).
MAX_MESSAGES = 5
#: Codes that send_msg_on_event accepts, and the msgtypes it takes.
CODE_MSGTYPES = frozenset({"text", "msgmenu"})
#: The fake's answer to a repeated msgid (real WeCom: UNCONFIRMED).
DUPLICATE_MSGID_CODES = frozenset({40058})
#: send_msg_on_event checks its single-use code first: a repeat after a try that used it is
#: refused as an invalid code (41050 in the fake; UNCONFIRMED for WeCom).
USED_CODE_CODES = frozenset({41050})
#: Outbox-entry flag: this message may already have reached WeCom.
MAYBE_SENT = "maybe_sent"
#: A welcome_code is valid this long after its enter_session event (protocol reference §8.6).
WELCOME_CODE_SECONDS = 20.0

#: The API client of an endpoint, None when it has no secret.


def job_key(open_kfid: str, msgid: str) -> str:
    return f"kf:{open_kfid}:{msgid}"


def reply_msgid(key: str, part: int) -> str:
    """The msgid of part ``part`` of the answer to job ``key``: the same on every retry."""
    digest = hashlib.sha256(f"{key}\n{part}".encode()).hexdigest()
    return MSGID_PREFIX + digest[: 32 - len(MSGID_PREFIX)]


def is_own_msgid(msgid: str) -> bool:
    return msgid.startswith(MSGID_PREFIX) and len(msgid) == 32


def event_code(message: dict[str, Any]) -> str:
    """The send_msg_on_event code an event carries (welcome_code, or msg_code), or ''."""
    event = message.get("event")
    if not isinstance(event, dict):
        return ""
    return str(event.get("welcome_code") or event.get("msg_code") or "")


def recipient(message: dict[str, Any]) -> str:
    if origin_of(message) == CUSTOMER:
        return str(message.get("external_userid") or "")
    event = message.get("event")
    return str(event.get("external_userid") or "") if isinstance(event, dict) else ""


def _api_messages(replies: list[KfMessage]) -> list[tuple[str, dict[str, Any]]]:
    """(msgtype, payload) pairs; long text split on character boundaries."""
    parts: list[tuple[str, dict[str, Any]]] = []
    for reply in replies:
        msgtype, payload = reply.to_api()
        if msgtype == "text":
            parts.extend(
                ("text", {"content": c}) for c in split_utf8(payload["content"], TEXT_LIMIT)
            )
        else:
            parts.append((msgtype, payload))
    return parts


def outbox_entry(
    key: str, open_kfid: str, message: dict[str, Any], replies: list[KfMessage]
) -> dict[str, Any] | None:
    """The outbox entry carrying ``replies`` to the customer of ``message``; None for none."""
    if not replies:
        return None
    code = event_code(message)
    if code:
        # One message per code, text or menu only (send_msg_on_event).
        first = replies[0]
        if first.msgtype not in CODE_MSGTYPES:
            log.warning(
                "%s: a %s answer cannot go with the event's code (text or msgmenu only); "
                "nothing sent",
                key,
                first.msgtype,
            )
            return None
        if len(replies) > 1:
            log.warning("%s: an event code carries one message; %d dropped", key, len(replies) - 1)
        msgtype, payload = first.to_api()
        if msgtype == "text":
            payload = {"content": truncate_utf8(payload["content"], TEXT_LIMIT)}
        messages = [
            {"msgid": reply_msgid(key, 0), "code": code, "msgtype": msgtype, msgtype: payload}
        ]
        return {"to": recipient(message), "open_kfid": open_kfid, "messages": messages}
    to = recipient(message)
    if not to:
        log.warning(
            "%s: a %s event names no customer; its answer is dropped", key, event_type(message)
        )
        return None
    parts = _api_messages(replies)
    if len(parts) > MAX_MESSAGES:
        log.warning(
            "%s: %d messages answer one customer message; WeCom takes %d, the rest are dropped",
            key,
            len(parts),
            MAX_MESSAGES,
        )
        parts = parts[:MAX_MESSAGES]
    messages = [
        {"msgid": reply_msgid(key, index), "msgtype": msgtype, msgtype: payload}
        for index, (msgtype, payload) in enumerate(parts)
    ]
    return {"to": to, "open_kfid": open_kfid, "messages": messages}


class KfAnswers(AnswerKindBase):
    """The "kf" job kind. Payload: ``{"endpoint", "open_kfid", "message"}``."""

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        endpoint = self.endpoint(payload["endpoint"])
        message = payload["message"]
        open_kfid = payload["open_kfid"]
        if endpoint.kf_router is None:
            return None
        value = dispatch_with_time_limit(
            endpoint.kf_router.dispatch, message, endpoint.handler_timeout
        )
        replies = to_kf_messages(value)
        key = job_key(open_kfid, str(message.get("msgid")))
        if replies and has_welcome_code(message):
            age = self.clock() - float(message.get("send_time") or 0)
            if age > WELCOME_CODE_SECONDS:
                log.warning(
                    "%s: the welcome_code is %.0f s old (valid %.0f s); no welcome sent",
                    key,
                    age,
                    WELCOME_CODE_SECONDS,
                )
                return None
        return outbox_entry(key, open_kfid, message, replies)

    def send(self, job: Job, entry: dict[str, Any], message: dict[str, Any]) -> None:
        """Send one message through the client, which retries transient failures itself.

        Its hook tells which tries may have reached WeCom; with one of those (or a marked try
        from before), a repeat refusal means an earlier try got through.
        """
        endpoint = self.endpoint(json.loads(job.payload)["endpoint"])
        client = self.client_for(endpoint)
        if client is None:
            raise DeliveryError(
                f"endpoint {endpoint.name} has no API secret (WECOM_KF_SECRET or WECOM_SECRET): "
                "微信客服 answers cannot be sent"
            )
        earlier = bool(message.get(MAYBE_SENT))
        if not earlier:
            self.mark_before_send(job, entry, message, MAYBE_SENT, True)
        reached: list[WeComAPIError] = []
        try:
            self._post(client, entry, message, reached.append)
        except WeComAPIError as exc:
            if (earlier or reached) and _is_repeat(exc, message):
                log.warning(
                    "%s: WeCom refused msgid %s as a repeat (errcode %s): an earlier try "
                    "was delivered; not sending again",
                    job.key,
                    message["msgid"],
                    exc.errcode,
                )
                return
            if not (earlier or reached):
                message.pop(MAYBE_SENT, None)  # WeCom surely did not take it
            raise

    @staticmethod
    def _post(
        client: WeComClient,
        entry: dict[str, Any],
        message: dict[str, Any],
        on_maybe_reached: MaybeReached,
    ) -> None:
        msgtype = message["msgtype"]
        content = message[msgtype]
        msgid = message["msgid"]
        if message.get("code"):
            client.kf_send_msg_on_event(
                message["code"], msgtype, content, msgid=msgid, on_maybe_reached=on_maybe_reached
            )
        else:
            client.kf_send_msg(
                entry["to"],
                entry["open_kfid"],
                msgtype,
                content,
                msgid=msgid,
                on_maybe_reached=on_maybe_reached,
            )


def _is_repeat(exc: WeComAPIError, message: dict[str, Any]) -> bool:
    if exc.errcode in DUPLICATE_MSGID_CODES:
        return True
    return bool(message.get("code")) and exc.errcode in USED_CODE_CODES


__all__ = [
    "MAX_MESSAGES",
    "MSGID_PREFIX",
    "KfAnswers",
    "event_code",
    "is_own_msgid",
    "job_key",
    "outbox_entry",
    "recipient",
    "reply_msgid",
]
