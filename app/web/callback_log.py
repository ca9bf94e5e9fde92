"""What every callback leaves behind once answered: one log line, its metrics, a console entry.

The line has the endpoint, the msgtype, the MsgId or the event, the outcome and the milliseconds
(the worker is the pid every line carries). Never the content, the sender's keys or a secret::

    callback app text MsgId=7000000000000000001 passive 3.1 ms
    callback kf event Event=kf_msg_or_event doorbell 1.0 ms
    callback app - - refused (signature: signature mismatch) 0.4 ms from 10.0.0.8
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import current_app

from app.infra.metrics import ANSWER_SECONDS, CALLBACKS, CallbackNote, msgtype_label

log = logging.getLogger("app.callbacks")

#: WeCom error codes (app.wecom.errors) by the reason class shown in metrics.
REASON_CLASSES = {
    -40001: "signature",
    -40002: "xml",
    -40003: "signature",
    -40005: "receiveid",
    -40006: "decrypt",
    -40007: "decrypt",
    -40008: "decrypt",
    -40010: "decrypt",
    -40011: "xml",
}
CONTENT_CHARS = 200


def reason_class(code: int | None, status: int) -> str:
    """The refusal's class: signature, receiveid, decrypt, xml, too_large or bad_request."""
    if code is not None and code in REASON_CLASSES:
        return REASON_CLASSES[code]
    if status == 413:
        return "too_large"
    return "bad_request" if code is None else "protocol"


def describe(note: CallbackNote, message: dict[str, Any], show_content: bool) -> None:
    """Fill the note from the decrypted message (metadata only, unless content may be kept)."""
    note.msgtype = str(message.get("MsgType") or "-")
    if message.get("MsgId"):
        note.ident = f"MsgId={message['MsgId']}"
    elif message.get("Event"):
        note.ident = f"Event={message['Event']}"
    if show_content and isinstance(message.get("Content"), str):
        note.content = message["Content"][:CONTENT_CHARS]


def finish(note: CallbackNote, status: int, remote_addr: str | None = None) -> None:
    """Count the callback, log its line, and hand it to the console's recorder (if any)."""
    elapsed = time.monotonic() - note.received_at
    if status >= 500 and note.outcome != "refused":
        note.outcome = "failed"
    CALLBACKS.labels(
        note.endpoint, note.kind, msgtype_label(note.msgtype), note.outcome, note.reason
    ).inc()
    if note.outcome != "refused":
        ANSWER_SECONDS.labels(note.endpoint).observe(elapsed)
    ms = round(elapsed * 1000, 1)
    fields = {
        "endpoint": note.endpoint,
        "msgtype": note.msgtype,
        "id": note.ident,
        "outcome": note.outcome,
        "ms": ms,
        "status": status,
    }
    if note.outcome == "refused":
        log.warning(
            "callback %s %s %s refused (%s: %s) %.1f ms from %s",
            note.endpoint,
            note.msgtype,
            note.ident,
            note.reason,
            note.detail,
            ms,
            remote_addr,
            extra={**fields, "reason": note.reason, "remote": remote_addr},
        )
    else:
        log.info(
            "callback %s %s %s %s %.1f ms",
            note.endpoint,
            note.msgtype,
            note.ident,
            note.outcome,
            ms,
            extra=fields,
        )
    history = current_app.extensions.get("wecom_history")
    if history is not None:
        history.record(note, ms)
