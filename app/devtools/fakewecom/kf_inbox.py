"""The customers' side of 微信客服: messages and events enqueued through the control API, the
callback Token for the doorbell, and the APIs that read them (kf/sync_msg, kf/account/list)."""

from __future__ import annotations

import base64
import binascii
import copy
import secrets
from collections.abc import Mapping
from typing import Any

from app.devtools.fakewecom import errcodes as E
from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.kf_state import (
    CALLBACK_TOKEN_TTL,
    KF_ALLOWANCE,
    KF_RETENTION,
    LONG_CODE_TTL,
    WELCOME_CODE_TTL,
    EventCode,
    KfItem,
    KfState,
)
from app.devtools.fakewecom.protocol import Call, ControlError, Reply, error, new_id, ok

_RESERVED = {"origin", "msgid", "send_time", "msgtype", "event", "welcome_code", "msg_code"}


class KfInbox:
    """Enqueues what customers write and pages it out through kf/sync_msg."""

    def __init__(self, kf: KfState, clock: FakeClock) -> None:
        self._kf = kf
        self._clock = clock

    # -- accounts -----------------------------------------------------------------------------
    def add_account(self, open_kfid: str, name: str | None = None) -> dict[str, Any]:
        account = {
            "open_kfid": open_kfid,
            "name": name or f"客服{len(self._kf.accounts) + 1}",
            "avatar": f"https://wework.qpic.cn/fake/{open_kfid}/0",
            "manage_privilege": True,
        }
        self._kf.accounts[open_kfid] = account
        return dict(account)

    def account_list(self, call: Call) -> Reply:
        offset, limit = call.body.get("offset", 0), call.body.get("limit", 100)
        if not isinstance(offset, int) or not isinstance(limit, int) or offset < 0:
            return error(E.INVALID_PARAMETER)
        if not 1 <= limit <= 100:
            return error(E.INVALID_PARAMETER)  # UNCONFIRMED code
        accounts = [dict(a) for a in self._kf.accounts.values()][offset : offset + limit]
        return ok(account_list=accounts)

    # -- kf/sync_msg --------------------------------------------------------------------------
    def sync_msg(self, call: Call) -> Reply:
        body = call.body
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or not 0 <= limit <= 1000:
            return error(E.INVALID_PARAMETER)  # UNCONFIRMED code for limit > 1000
        limit = limit or 1000
        open_kfid = body.get("open_kfid") or None
        if open_kfid is not None and open_kfid not in self._kf.accounts:
            return error(E.INVALID_OPEN_KFID)
        now = self._clock.now()
        token = body.get("token")
        if token:
            entry = self._kf.callback_tokens.get(str(token))
            if entry is None or now >= entry[1]:
                return error(E.INVALID_MSG_TOKEN)
        after = 0
        if body.get("cursor"):
            decoded = _decode_cursor(str(body["cursor"]))
            if decoded is None:
                return error(E.INVALID_CURSOR)
            after = decoded
        if call.fault is not None and call.fault.kind == "empty_page":
            return ok(next_cursor=_encode_cursor(after), has_more=1, msg_list=[])
        oldest = now - KF_RETENTION
        pending = [
            item
            for item in self._kf.log
            if item.seq > after
            and (open_kfid is None or item.open_kfid == open_kfid)
            and item.send_time >= oldest
        ]
        page = pending[:limit]
        last = page[-1].seq if page else after
        return ok(
            next_cursor=_encode_cursor(last),
            has_more=int(len(pending) > limit),
            msg_list=[copy.deepcopy(item.data) for item in page],
        )

    # -- control: customers write -------------------------------------------------------------
    def enqueue(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add customer messages (origin 3), events (origin 4) or servicer messages (origin 5).

        Returns the callback Token (valid 10 minutes) to put into a kf_msg_or_event callback,
        the msgids, and any welcome_code / msg_code issued for events.
        """
        open_kfid = spec.get("open_kfid")
        if not open_kfid:
            if len(self._kf.accounts) != 1:
                raise ControlError("say which open_kfid (the fake has several accounts)")
            open_kfid = next(iter(self._kf.accounts))
        if open_kfid not in self._kf.accounts:
            raise ControlError(f"unknown open_kfid {open_kfid!r}")
        items = spec.get("messages")
        if items is None:
            items = [spec["message"]] if "message" in spec else []
        if not isinstance(items, list) or len(items) > 10000:
            raise ControlError("'messages' must be a list of at most 10000 messages")
        default_time = spec.get("send_time")
        msgids: list[str] = []
        codes: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise ControlError("each message must be an object")
            data, code = self._build_item(str(open_kfid), item, default_time)
            self._kf.seq += 1
            self._kf.log.append(
                KfItem(self._kf.seq, str(open_kfid), float(data["send_time"]), data)
            )
            msgids.append(data["msgid"])
            if code is not None:
                codes.append(code)
        token = "ENC" + secrets.token_urlsafe(33)
        expires = self._clock.now() + CALLBACK_TOKEN_TTL
        self._kf.callback_tokens[token] = (str(open_kfid), expires)
        return {
            "errcode": 0,
            "token": token,
            "open_kfid": open_kfid,
            "msgids": msgids,
            "codes": codes,
            "welcome_codes": [c["code"] for c in codes if c["kind"] == "welcome"],
        }

    def _build_item(
        self, open_kfid: str, item: Mapping[str, Any], default_time: Any
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        send_time = int(item.get("send_time") or default_time or self._clock.now())
        msgid = str(item.get("msgid") or new_id())
        external_userid = str(item.get("external_userid") or "")
        if item.get("event") is not None or item.get("msgtype") == "event":
            return self._build_event(open_kfid, item, msgid, send_time, external_userid)
        msgtype = item.get("msgtype") or "text"
        payload = item.get(msgtype)
        if msgtype == "text" and isinstance(payload, str):
            payload = {"content": payload}
        if not isinstance(payload, Mapping):
            raise ControlError(f"message of type {msgtype!r} needs a {msgtype!r} object")
        origin = int(item.get("origin", 3))
        if origin not in (3, 5):
            raise ControlError("origin is 3 (customer) or 5 (servicer); events use 'event'")
        if not external_userid:
            raise ControlError("a message needs an external_userid")
        data: dict[str, Any] = {
            "msgid": msgid,
            "open_kfid": open_kfid,
            "external_userid": external_userid,
            "send_time": send_time,
            "origin": origin,
            "msgtype": msgtype,
            msgtype: dict(payload),
        }
        if origin == 5:
            data["servicer_userid"] = str(item.get("servicer_userid") or "")
        else:  # the customer wrote: the window opens and five answers are allowed
            session = self._kf.session(open_kfid, external_userid)
            session.last_customer_at = float(send_time)
            session.allowance = KF_ALLOWANCE
            if session.state == 4:
                session.state = 0
        return data, None

    def _build_event(
        self,
        open_kfid: str,
        item: Mapping[str, Any],
        msgid: str,
        send_time: int,
        external_userid: str,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        raw_event = item.get("event")
        if isinstance(raw_event, Mapping):
            event = dict(raw_event)
        elif isinstance(raw_event, str):
            event = {"event_type": raw_event}
            event.update({k: v for k, v in item.items() if k not in _RESERVED})
        else:
            raise ControlError("'event' is an event_type string or an event object")
        event.setdefault("open_kfid", open_kfid)
        if external_userid:
            event.setdefault("external_userid", external_userid)
        issued: dict[str, Any] | None = None
        event_type = event.get("event_type")
        user = str(event.get("external_userid") or "")
        if event_type == "enter_session" and item.get("welcome_code", True) is True:
            issued = self._issue_code(open_kfid, user, "welcome", WELCOME_CODE_TTL, msgid)
            event["welcome_code"] = issued["code"]
        elif event_type == "session_status_change" and item.get("msg_code"):
            ttl = WELCOME_CODE_TTL if event.get("change_type") == 3 else LONG_CODE_TTL
            issued = self._issue_code(open_kfid, user, "msg_code", ttl, msgid)
            event["msg_code"] = issued["code"]
        data = {
            "msgid": msgid,
            "send_time": send_time,
            "origin": 4,
            "msgtype": "event",
            "event": event,
        }
        return data, issued

    def _issue_code(
        self, open_kfid: str, user: str, kind: str, ttl: float, msgid: str
    ) -> dict[str, Any]:
        code = new_id()
        expires_at = self._clock.now() + ttl
        self._kf.event_codes[code] = EventCode(code, open_kfid, user, kind, expires_at)
        return {"code": code, "kind": kind, "msgid": msgid, "expires_at": expires_at}


def _encode_cursor(seq: int) -> str:
    """An opaque cursor (≤64 bytes) naming a position in the kf log; fresh on every page."""
    raw = f"{seq}.{secrets.token_hex(6)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seq, _, nonce = raw.partition(".")
        return int(seq) if nonce and int(seq) >= 0 else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
