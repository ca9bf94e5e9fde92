"""The service's side of 微信客服: kf/send_msg and kf/send_msg_on_event, with the session rules
(48-hour window, five answers per customer message, session states) and one-use event codes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

from app.devtools.fakewecom import errcodes as E
from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.journal import Journal
from app.devtools.fakewecom.kf_state import KF_WINDOW, KfState
from app.devtools.fakewecom.protocol import Call, ControlError, Reply, check_text, error, new_id, ok

KF_MSGTYPES: Final = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "link",
        "miniprogram",
        "msgmenu",
        "location",
        "ca_link",
    }
)
KF_EVENT_MSGTYPES: Final = frozenset({"text", "msgmenu"})

_MSGID_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


class KfSender:
    """Answers kf/send_msg and kf/send_msg_on_event; accepted messages go to the journal."""

    def __init__(self, kf: KfState, clock: FakeClock, journal: Journal) -> None:
        self._kf = kf
        self._clock = clock
        self._journal = journal

    def send_msg(self, call: Call) -> Reply:
        body = call.body
        open_kfid = str(body.get("open_kfid") or "")
        if open_kfid not in self._kf.accounts:
            return error(E.INVALID_OPEN_KFID)
        touser = str(body.get("touser") or "")
        if not touser:
            return error(E.INVALID_EXTERNAL_USERID)
        msgtype = body.get("msgtype")
        if msgtype not in KF_MSGTYPES:
            return error(E.INVALID_MSGTYPE)
        code = check_kf_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return error(code)
        msgid, code = self._msgid(open_kfid, body.get("msgid"))
        if code:
            return error(code)
        session = self._kf.sessions.get((open_kfid, touser))
        if session is None or session.last_customer_at is None:
            return error(E.KF_SEND_COUNT_LIMIT)  # never wrote to us: nothing to answer
        if session.state == 4:
            return error(E.KF_SESSION_ENDED)
        if session.state in (2, 3):
            return error(E.KF_SESSION_STATE_INVALID)
        if self._clock.now() - session.last_customer_at > KF_WINDOW:
            return error(E.KF_SEND_TIME_LIMIT)
        if session.allowance <= 0:
            return error(E.KF_SEND_COUNT_LIMIT)
        session.allowance -= 1
        self._kf.msgids[open_kfid].add(msgid)
        self._journal.record("kf/send_msg", body, msgid, open_kfid=open_kfid, touser=touser)
        return ok(msgid=msgid)

    def send_msg_on_event(self, call: Call) -> Reply:
        body = call.body
        code_value = body.get("code")
        if not code_value:
            return error(E.MISSING_EVENT_CODE)
        rec = self._kf.event_codes.get(str(code_value))
        if rec is None or rec.used or self._clock.now() >= rec.expires_at:
            return error(E.INVALID_EVENT_CODE)
        msgtype = body.get("msgtype")
        if msgtype not in KF_EVENT_MSGTYPES:
            return error(E.INVALID_MSGTYPE)
        code = check_kf_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return error(code)
        msgid, code = self._msgid(rec.open_kfid, body.get("msgid"))
        if code:
            return error(code)
        rec.used = True
        self._kf.msgids[rec.open_kfid].add(msgid)
        self._journal.record(
            "kf/send_msg_on_event",
            body,
            msgid,
            open_kfid=rec.open_kfid,
            touser=rec.external_userid,
            code_kind=rec.kind,
        )
        return ok(msgid=msgid)

    def _msgid(self, open_kfid: str, given: Any) -> tuple[str, int]:
        """(msgid to use, errcode). A given msgid must be well-formed and new for the account."""
        if given is None or given == "":
            return new_id(), 0
        if not isinstance(given, str) or not _MSGID_RE.match(given):
            return "", E.INVALID_PARAMETER  # UNCONFIRMED code
        if given in self._kf.msgids[open_kfid]:
            return "", E.INVALID_PARAMETER  # UNCONFIRMED code for a repeated msgid
        return given, 0

    # -- control ------------------------------------------------------------------------------
    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        """Force a session's service_state (0–4) to test send_msg refusals."""
        if state not in (0, 1, 2, 3, 4):
            raise ControlError("state is one of 0, 1, 2, 3, 4")
        session = self._kf.session(open_kfid, external_userid)
        session.state = state
        return dataclasses.asdict(session)


def check_kf_payload(msgtype: str, payload: Any) -> int:
    """The errcode for a bad kf/send_msg (or send_msg_on_event) payload, or 0."""
    if msgtype == "text":
        return check_text(payload)
    if not isinstance(payload, Mapping):
        return E.EMPTY_PARAMETER
    if msgtype in ("image", "voice", "video", "file"):
        return 0 if payload.get("media_id") else E.MISSING_MEDIA_ID
    required = {
        "link": ("title", "url"),
        "miniprogram": ("appid", "thumb_media_id", "pagepath"),
        "location": ("latitude", "longitude"),
    }.get(msgtype, ())
    if msgtype == "msgmenu" and not (payload.get("list") or payload.get("head_content")):
        return E.EMPTY_PARAMETER
    return 0 if all(payload.get(k) not in (None, "") for k in required) else E.EMPTY_PARAMETER
