"""State and rules of the fake WeCom server. No sockets here: ``server.py`` does the HTTP.

Everything is guarded by one lock, so handler threads and control calls can interleave freely.
Times come from ``now()``: the injected clock plus an offset that the control API can advance, so
tests reach "10 minutes later" or "48 hours later" without sleeping.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import dataclasses
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from app.devtools.fakewecom import errcodes as E

ENDPOINTS: Final = (
    "gettoken",
    "message/send",
    "kf/sync_msg",
    "kf/send_msg",
    "kf/send_msg_on_event",
    "kf/account/list",
)
ANY_ENDPOINT: Final = "*"
FAULT_KINDS: Final = frozenset(
    {"errcode", "http", "delay", "drop", "drop_after", "token_expired", "empty_page"}
)

APP_MSGTYPES: Final = frozenset(
    {
        "text",
        "markdown",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "template_card",
        "miniprogram_notice",
    }
)
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

TEXT_LIMIT: Final = 2048  # bytes of UTF-8, text and markdown
CALLBACK_TOKEN_TTL: Final = 600.0  # the kf_msg_or_event Token is valid 10 minutes
WELCOME_CODE_TTL: Final = 20.0
LONG_CODE_TTL: Final = 48 * 3600.0
KF_WINDOW: Final = 48 * 3600.0
KF_ALLOWANCE: Final = 5
KF_RETENTION: Final = 3 * 86400.0  # sync_msg only returns the last 3 days
MAX_LOG: Final = 20000  # request-log entries kept (oldest dropped)

_MSGID_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


class ControlError(ValueError):
    """A control-API request that makes no sense (answered with HTTP 400)."""


@dataclasses.dataclass
class Reply:
    """What the HTTP layer should do: answer ``body`` (JSON) or ``text``, then maybe drop."""

    status: int = 200
    body: dict[str, Any] | None = None
    text: str | None = None
    drop: bool = False


@dataclasses.dataclass
class Fault:
    """One injected fault, consumed by the next request to its endpoint."""

    kind: str
    errcode: int | None = None
    status: int = 500
    seconds: float = 0.0

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ControlError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        errcode = spec.get("errcode")
        if kind == "errcode" and not isinstance(errcode, int):
            raise ControlError("an errcode fault needs an integer 'errcode'")
        seconds = float(spec.get("seconds", 0.0))
        if kind == "delay" and not 0 <= seconds <= 600:
            raise ControlError("a delay fault needs 0 <= seconds <= 600")
        return cls(kind=kind, errcode=errcode, status=int(spec.get("status", 500)), seconds=seconds)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass
class App:
    """One secret: a self-built app (with ``agent_id``) or the 微信客服 secret (without)."""

    secret: str
    agent_id: int | None = None
    kf: bool = True  # may call the kf/* APIs


@dataclasses.dataclass
class _Token:
    value: str
    secret: str
    issued_at: float
    expires_at: float


@dataclasses.dataclass
class _KfItem:
    seq: int
    open_kfid: str
    send_time: float
    data: dict[str, Any]


@dataclasses.dataclass
class _Session:
    last_customer_at: float | None = None
    allowance: int = 0
    state: int = 0  # service_state: 0 new, 1 bot, 2 queued, 3 servicer, 4 ended


@dataclasses.dataclass
class _EventCode:
    code: str
    open_kfid: str
    external_userid: str
    kind: str
    expires_at: float
    used: bool = False


def _secret_tag(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:10]


def has_non_ascii_escape(text: str) -> bool:
    """True if JSON ``text`` holds a ``\\uXXXX`` escape of a non-ASCII code point."""
    i, n = 0, len(text)
    while i < n:
        j = text.find("\\", i)
        if j < 0 or j + 1 >= n:
            return False
        if text[j + 1] == "u":
            try:
                if int(text[j + 2 : j + 6], 16) >= 0x80:
                    return True
            except ValueError:
                pass
            i = j + 6
        else:
            i = j + 2  # an escaped character, possibly an escaped backslash
    return False


class FakeWeComState:
    """The fake's whole state: apps and tokens, sent messages, the kf log, faults, the log."""

    def __init__(
        self,
        corp_id: str,
        apps: Iterable[App],
        *,
        expires_in: int = 7200,
        kf_accounts: Iterable[str | Mapping[str, Any]] = (),
        known_users: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self.corp_id = corp_id
        self.expires_in = expires_in
        self._clock = clock
        self._apps: dict[str, App] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self.known_users = {u.lower() for u in known_users} if known_users is not None else None
        for app in apps:
            self.add_app(app)
        for account in kf_accounts:
            if isinstance(account, str):
                self.add_kf_account(account)
            else:
                self.add_kf_account(str(account["open_kfid"]), account.get("name"))
        self._reset_runtime()

    # -- configuration ------------------------------------------------------------------------
    def _reset_runtime(self) -> None:
        self._offset = 0.0
        self._tokens: dict[str, _Token] = {}
        self.gettoken_calls = 0
        self.tokens_issued = 0
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )
        self._sent: list[dict[str, Any]] = []
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_LOG)
        self._by_endpoint: collections.Counter[str] = collections.Counter()
        self._request_seq = 0
        self._kf_log: list[_KfItem] = []
        self._kf_seq = 0
        self._callback_tokens: dict[str, tuple[str, float]] = {}
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._event_codes: dict[str, _EventCode] = {}
        self._kf_msgids: dict[str, set[str]] = collections.defaultdict(set)

    def reset(self) -> None:
        """Forget everything that happened; keep corp, apps, accounts and settings."""
        with self._lock:
            self._reset_runtime()

    def add_app(self, app: App) -> None:
        with self._lock:
            if app.agent_id is not None:
                for other in self._apps.values():
                    if other.agent_id == app.agent_id and other.secret != app.secret:
                        raise ControlError(f"agent_id {app.agent_id} already belongs to an app")
            self._apps[app.secret] = app

    def add_kf_account(self, open_kfid: str, name: str | None = None) -> dict[str, Any]:
        with self._lock:
            account = {
                "open_kfid": open_kfid,
                "name": name or f"客服{len(self._accounts) + 1}",
                "avatar": f"https://wework.qpic.cn/fake/{open_kfid}/0",
                "manage_privilege": True,
            }
            self._accounts[open_kfid] = account
            return dict(account)

    def configure(self, *, expires_in: int | None = None) -> dict[str, Any]:
        with self._lock:
            if expires_in is not None:
                if expires_in < 1:
                    raise ControlError("expires_in must be >= 1")
                self.expires_in = int(expires_in)
            return {"expires_in": self.expires_in}

    # -- clock --------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward (tokens, codes and kf windows age accordingly)."""
        if seconds < 0:
            raise ControlError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self.now()

    # -- faults -------------------------------------------------------------------------------
    def add_faults(
        self, endpoint: str, faults: Iterable[Fault | Mapping[str, Any]], count: int = 1
    ) -> dict[str, int]:
        if endpoint != ANY_ENDPOINT and endpoint not in ENDPOINTS:
            raise ControlError(f"unknown endpoint {endpoint!r}; one of {[*ENDPOINTS, '*']}")
        if not 1 <= count <= 10000:
            raise ControlError("count must be between 1 and 10000")
        parsed = [f if isinstance(f, Fault) else Fault.from_json(f) for f in faults]
        with self._lock:
            for _ in range(count):
                self._faults[endpoint].extend(parsed)
            return self.pending_faults()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self._faults.items() if v}

    def take_fault(self, endpoint: str) -> Fault | None:
        """The next fault for ``endpoint``: its own queue first, then the global one."""
        with self._lock:
            for key in (endpoint, ANY_ENDPOINT):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
            return None

    # -- tokens -------------------------------------------------------------------------------
    def expire_tokens(self, token: str | None = None) -> int:
        """Make one token (or all) answer 42001 from now on."""
        with self._lock:
            targets = [token] if token else list(self._tokens)
            count = 0
            for value in targets:
                rec = self._tokens.get(value)
                if rec is not None and rec.expires_at > self.now():
                    rec.expires_at = self.now()
                    count += 1
            return count

    def revoke_tokens(self, token: str | None = None) -> int:
        """Forget one token (or all): it answers 40014 from now on."""
        with self._lock:
            if token:
                return 1 if self._tokens.pop(token, None) else 0
            count = len(self._tokens)
            self._tokens.clear()
            return count

    # -- requests -----------------------------------------------------------------------------
    def begin(
        self,
        method: str,
        endpoint: str,
        query: Mapping[str, str],
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Log a request as it arrives and return its log entry."""
        with self._lock:
            self._request_seq += 1
            self._by_endpoint[endpoint] += 1
            if endpoint == "gettoken":
                self.gettoken_calls += 1
            shown = dict(query)
            if "corpsecret" in shown:
                shown["corpsecret"] = _secret_tag(shown["corpsecret"])
            entry: dict[str, Any] = {
                "seq": self._request_seq,
                "time": self.now(),
                "wall_time": time.time(),
                "method": method,
                "endpoint": endpoint,
                "query": shown,
                "content_type": content_type,
                "body": None,
                "fault": None,
                "status": None,
                "errcode": None,
            }
            self._log.append(entry)
            return entry

    def note(self, entry: dict[str, Any], **fields: Any) -> None:
        """Update a log entry from the HTTP layer (under the lock)."""
        with self._lock:
            entry.update(fields)

    def handle(
        self,
        entry: dict[str, Any],
        query: Mapping[str, str],
        raw_body: bytes,
        fault: Fault | None,
    ) -> Reply:
        """Answer one API request (after any delay); ``entry`` is updated with the outcome."""
        with self._lock:
            if fault is not None:
                entry["fault"] = fault.kind
            reply = self._dispatch(entry, query, raw_body, fault)
            if fault is not None and fault.kind == "drop_after":
                reply.drop = True
            entry["status"] = reply.status
            if reply.body is not None:
                entry["errcode"] = reply.body.get("errcode")
            return reply

    def _dispatch(
        self,
        entry: dict[str, Any],
        query: Mapping[str, str],
        raw_body: bytes,
        fault: Fault | None,
    ) -> Reply:
        endpoint = entry["endpoint"]
        if raw_body:
            try:
                entry["body"] = json.loads(raw_body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                entry["body"] = raw_body.decode("utf-8", "replace")
        if fault is not None:
            if fault.kind == "errcode":
                return self._error(int(fault.errcode or 0))
            if fault.kind == "http":
                return Reply(status=fault.status, text=f"<html><body>{fault.status}</body></html>")
            if fault.kind == "token_expired":
                token = query.get("access_token")
                if token:
                    self.expire_tokens(token)
                return self._error(E.ACCESS_TOKEN_EXPIRED)
        handler = {
            "gettoken": self._gettoken,
            "message/send": self._message_send,
            "kf/sync_msg": self._kf_sync_msg,
            "kf/send_msg": self._kf_send_msg,
            "kf/send_msg_on_event": self._kf_send_msg_on_event,
            "kf/account/list": self._kf_account_list,
        }[endpoint]
        return handler(query, raw_body, fault)

    # -- helpers ------------------------------------------------------------------------------
    def _error(self, code: int) -> Reply:
        return Reply(body={"errcode": code, "errmsg": E.errmsg(code, secrets.token_hex(8))})

    def _ok(self, **fields: Any) -> Reply:
        return Reply(body={"errcode": E.OK, "errmsg": "ok", **fields})

    def _auth(self, query: Mapping[str, str]) -> tuple[App | None, Reply | None]:
        token = query.get("access_token")
        if not token:
            return None, self._error(E.MISSING_ACCESS_TOKEN)
        rec = self._tokens.get(token)
        if rec is None or rec.secret not in self._apps:
            return None, self._error(E.INVALID_ACCESS_TOKEN)
        if self.now() >= rec.expires_at:
            return None, self._error(E.ACCESS_TOKEN_EXPIRED)
        return self._apps[rec.secret], None

    def _auth_kf(self, query: Mapping[str, str]) -> tuple[App | None, Reply | None]:
        app, err = self._auth(query)
        if app is not None and not app.kf:
            return None, self._error(E.API_FORBIDDEN)
        return app, err

    def _json(self, raw: bytes) -> tuple[dict[str, Any], Reply | None]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {}, self._error(E.INVALID_CHARSET)
        if has_non_ascii_escape(text):
            return {}, self._error(E.INVALID_CHARSET)
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            return {}, self._error(E.BAD_JSON)
        if not isinstance(data, dict):
            return {}, self._error(E.BAD_JSON)
        return data, None

    @staticmethod
    def _new_id(prefix: str = "") -> str:
        return prefix + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")

    def _record(self, api: str, body: dict[str, Any], msgid: str, **extra: Any) -> None:
        self._sent.append(
            {
                "api": api,
                "msgid": msgid,
                "time": self.now(),
                "wall_time": time.time(),
                "msgtype": body.get("msgtype"),
                "body": copy.deepcopy(body),
                **extra,
            }
        )

    # -- gettoken -----------------------------------------------------------------------------
    def _gettoken(self, query: Mapping[str, str], raw: bytes, fault: Fault | None) -> Reply:
        corp_id = query.get("corpid")
        secret = query.get("corpsecret")
        if not corp_id:
            return self._error(E.MISSING_CORPID)
        if corp_id != self.corp_id:
            return self._error(E.INVALID_CORPID)
        if not secret:
            return self._error(E.MISSING_SECRET)
        if secret not in self._apps:
            return self._error(E.INVALID_CREDENTIAL)
        now = self.now()
        value = secrets.token_urlsafe(96)  # real tokens are long opaque strings (≤512 bytes)
        self._tokens[value] = _Token(value, secret, now, now + self.expires_in)
        self.tokens_issued += 1
        return self._ok(access_token=value, expires_in=self.expires_in)

    # -- message/send -------------------------------------------------------------------------
    def _message_send(self, query: Mapping[str, str], raw: bytes, fault: Fault | None) -> Reply:
        app, err = self._auth(query)
        if err:
            return err
        assert app is not None
        body, err = self._json(raw)
        if err:
            return err
        agentid = body.get("agentid")
        if agentid is None or agentid == "":
            return self._error(E.MISSING_AGENTID)
        try:
            agent = int(agentid)
        except (TypeError, ValueError):
            return self._error(E.INVALID_AGENTID)
        owner = next((a for a in self._apps.values() if a.agent_id == agent), None)
        if owner is None:
            return self._error(E.INVALID_AGENTID)
        if owner.secret != app.secret:
            return self._error(E.AGENT_NOT_OF_TOKEN)
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        parties = [p for p in str(body.get("toparty") or "").split("|") if p]
        tags = [t for t in str(body.get("totag") or "").split("|") if t]
        if not (users or parties or tags):
            return self._error(E.NO_RECIPIENTS)
        if len(users) > 1000:
            return self._error(E.INVALID_USERID_LIST_SIZE)
        if len(parties) > 100:
            return self._error(E.TOO_MANY_PARTIES)
        if len(tags) > 100:
            return self._error(E.TOO_MANY_TAGS)
        msgtype = body.get("msgtype")
        if msgtype not in APP_MSGTYPES:
            return self._error(E.INVALID_MSGTYPE)
        code = _check_app_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return self._error(code)
        invalid: list[str] = []
        if self.known_users is not None and users != ["@all"]:
            invalid = [u.lower() for u in users if u.lower() not in self.known_users]
            if len(invalid) == len(users) and not (parties or tags):
                return self._error(E.ALL_RECIPIENTS_INVALID)
        msgid = self._new_id()
        self._record("message/send", body, msgid, agentid=agent, invaliduser=invalid)
        extra: dict[str, Any] = {}
        if msgtype == "template_card":
            extra["response_code"] = self._new_id("rc")
        return self._ok(
            invaliduser="|".join(invalid),
            invalidparty="",
            invalidtag="",
            unlicenseduser="",
            msgid=msgid,
            **extra,
        )

    # -- kf/account/list ----------------------------------------------------------------------
    def _kf_account_list(self, query: Mapping[str, str], raw: bytes, fault: Fault | None) -> Reply:
        _, err = self._auth_kf(query)
        if err:
            return err
        body: dict[str, Any] = {}
        if raw.strip():
            body, err = self._json(raw)
            if err:
                return err
        offset, limit = body.get("offset", 0), body.get("limit", 100)
        if not isinstance(offset, int) or not isinstance(limit, int) or offset < 0:
            return self._error(E.INVALID_PARAMETER)
        if not 1 <= limit <= 100:
            return self._error(E.INVALID_PARAMETER)  # UNCONFIRMED code
        accounts = [dict(a) for a in self._accounts.values()][offset : offset + limit]
        return self._ok(account_list=accounts)

    # -- kf/sync_msg --------------------------------------------------------------------------
    def _kf_sync_msg(self, query: Mapping[str, str], raw: bytes, fault: Fault | None) -> Reply:
        _, err = self._auth_kf(query)
        if err:
            return err
        body, err = self._json(raw)
        if err:
            return err
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or not 0 <= limit <= 1000:
            return self._error(E.INVALID_PARAMETER)  # UNCONFIRMED code for limit > 1000
        limit = limit or 1000
        open_kfid = body.get("open_kfid") or None
        if open_kfid is not None and open_kfid not in self._accounts:
            return self._error(E.INVALID_OPEN_KFID)
        token = body.get("token")
        if token:
            entry = self._callback_tokens.get(str(token))
            if entry is None or self.now() >= entry[1]:
                return self._error(E.INVALID_MSG_TOKEN)
        after = 0
        if body.get("cursor"):
            decoded = _decode_cursor(str(body["cursor"]))
            if decoded is None:
                return self._error(E.INVALID_CURSOR)
            after = decoded
        if fault is not None and fault.kind == "empty_page":
            return self._ok(next_cursor=_encode_cursor(after), has_more=1, msg_list=[])
        oldest = self.now() - KF_RETENTION
        pending = [
            item
            for item in self._kf_log
            if item.seq > after
            and (open_kfid is None or item.open_kfid == open_kfid)
            and item.send_time >= oldest
        ]
        page = pending[:limit]
        last = page[-1].seq if page else after
        return self._ok(
            next_cursor=_encode_cursor(last),
            has_more=int(len(pending) > limit),
            msg_list=[copy.deepcopy(item.data) for item in page],
        )

    # -- kf/send_msg --------------------------------------------------------------------------
    def _kf_send_msg(self, query: Mapping[str, str], raw: bytes, fault: Fault | None) -> Reply:
        _, err = self._auth_kf(query)
        if err:
            return err
        body, err = self._json(raw)
        if err:
            return err
        open_kfid = str(body.get("open_kfid") or "")
        if open_kfid not in self._accounts:
            return self._error(E.INVALID_OPEN_KFID)
        touser = str(body.get("touser") or "")
        if not touser:
            return self._error(E.INVALID_EXTERNAL_USERID)
        msgtype = body.get("msgtype")
        if msgtype not in KF_MSGTYPES:
            return self._error(E.INVALID_MSGTYPE)
        code = _check_kf_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return self._error(code)
        msgid, code = self._kf_msgid(open_kfid, body.get("msgid"))
        if code:
            return self._error(code)
        session = self._sessions.get((open_kfid, touser))
        if session is None or session.last_customer_at is None:
            return self._error(E.KF_SEND_COUNT_LIMIT)  # never wrote to us: nothing to answer
        if session.state == 4:
            return self._error(E.KF_SESSION_ENDED)
        if session.state in (2, 3):
            return self._error(E.KF_SESSION_STATE_INVALID)
        if self.now() - session.last_customer_at > KF_WINDOW:
            return self._error(E.KF_SEND_TIME_LIMIT)
        if session.allowance <= 0:
            return self._error(E.KF_SEND_COUNT_LIMIT)
        session.allowance -= 1
        self._kf_msgids[open_kfid].add(msgid)
        self._record("kf/send_msg", body, msgid, open_kfid=open_kfid, touser=touser)
        return self._ok(msgid=msgid)

    def _kf_msgid(self, open_kfid: str, given: Any) -> tuple[str, int]:
        """(msgid to use, errcode). A given msgid must be well-formed and new for the account."""
        if given is None or given == "":
            return self._new_id(), 0
        if not isinstance(given, str) or not _MSGID_RE.match(given):
            return "", E.INVALID_PARAMETER  # UNCONFIRMED code
        if given in self._kf_msgids[open_kfid]:
            return "", E.INVALID_PARAMETER  # UNCONFIRMED code for a repeated msgid
        return given, 0

    # -- kf/send_msg_on_event -----------------------------------------------------------------
    def _kf_send_msg_on_event(
        self, query: Mapping[str, str], raw: bytes, fault: Fault | None
    ) -> Reply:
        _, err = self._auth_kf(query)
        if err:
            return err
        body, err = self._json(raw)
        if err:
            return err
        code_value = body.get("code")
        if not code_value:
            return self._error(E.MISSING_EVENT_CODE)
        rec = self._event_codes.get(str(code_value))
        if rec is None or rec.used or self.now() >= rec.expires_at:
            return self._error(E.INVALID_EVENT_CODE)
        msgtype = body.get("msgtype")
        if msgtype not in KF_EVENT_MSGTYPES:
            return self._error(E.INVALID_MSGTYPE)
        code = _check_kf_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return self._error(code)
        msgid, code = self._kf_msgid(rec.open_kfid, body.get("msgid"))
        if code:
            return self._error(code)
        rec.used = True
        self._kf_msgids[rec.open_kfid].add(msgid)
        self._record(
            "kf/send_msg_on_event",
            body,
            msgid,
            open_kfid=rec.open_kfid,
            touser=rec.external_userid,
            code_kind=rec.kind,
        )
        return self._ok(msgid=msgid)

    # -- control: kf --------------------------------------------------------------------------
    def enqueue_kf(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add customer messages (origin 3), events (origin 4) or servicer messages (origin 5).

        Returns the callback Token (valid 10 minutes) to put into a kf_msg_or_event callback,
        the msgids, and any welcome_code / msg_code issued for events.
        """
        with self._lock:
            open_kfid = spec.get("open_kfid")
            if not open_kfid:
                if len(self._accounts) != 1:
                    raise ControlError("say which open_kfid (the fake has several accounts)")
                open_kfid = next(iter(self._accounts))
            if open_kfid not in self._accounts:
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
                data, code = self._build_kf_item(str(open_kfid), item, default_time)
                self._kf_seq += 1
                self._kf_log.append(
                    _KfItem(self._kf_seq, str(open_kfid), float(data["send_time"]), data)
                )
                msgids.append(data["msgid"])
                if code is not None:
                    codes.append(code)
            token = "ENC" + secrets.token_urlsafe(33)
            self._callback_tokens[token] = (str(open_kfid), self.now() + CALLBACK_TOKEN_TTL)
            return {
                "errcode": 0,
                "token": token,
                "open_kfid": open_kfid,
                "msgids": msgids,
                "codes": codes,
                "welcome_codes": [c["code"] for c in codes if c["kind"] == "welcome"],
            }

    def _build_kf_item(
        self, open_kfid: str, item: Mapping[str, Any], default_time: Any
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        now = self.now()
        send_time = int(item.get("send_time") or default_time or now)
        msgid = str(item.get("msgid") or self._new_id())
        external_userid = str(item.get("external_userid") or "")
        event = item.get("event")
        if event is not None or item.get("msgtype") == "event":
            return self._build_kf_event(open_kfid, item, msgid, send_time, external_userid)
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
        else:
            session = self._sessions.setdefault((open_kfid, external_userid), _Session())
            session.last_customer_at = float(send_time)
            session.allowance = KF_ALLOWANCE
            if session.state == 4:
                session.state = 0
        return data, None

    def _build_kf_event(
        self,
        open_kfid: str,
        item: Mapping[str, Any],
        msgid: str,
        send_time: int,
        external_userid: str,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        raw_event = item.get("event")
        reserved = {"origin", "msgid", "send_time", "msgtype", "event", "welcome_code", "msg_code"}
        if isinstance(raw_event, Mapping):
            event = dict(raw_event)
        elif isinstance(raw_event, str):
            event = {"event_type": raw_event}
            event.update({k: v for k, v in item.items() if k not in reserved})
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
        code = self._new_id()
        expires_at = self.now() + ttl
        self._event_codes[code] = _EventCode(code, open_kfid, user, kind, expires_at)
        return {"code": code, "kind": kind, "msgid": msgid, "expires_at": expires_at}

    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        """Force a session's service_state (0–4) to test send_msg refusals."""
        if state not in (0, 1, 2, 3, 4):
            raise ControlError("state is one of 0, 1, 2, 3, 4")
        with self._lock:
            session = self._sessions.setdefault((open_kfid, external_userid), _Session())
            session.state = state
            return dataclasses.asdict(session)

    # -- observation --------------------------------------------------------------------------
    def sent(self, api: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(s) for s in self._sent if api is None or s["api"] == api]

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(e) for e in self._log if endpoint is None or e["endpoint"] == endpoint
            ]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": self.now(),
                "gettoken_calls": self.gettoken_calls,
                "tokens_issued": self.tokens_issued,
                "requests_by_endpoint": dict(self._by_endpoint),
                "sent": len(self._sent),
                "pending_faults": self.pending_faults(),
                "kf_messages": len(self._kf_log),
            }


def _check_text(payload: Any) -> int:
    """The errcode for a text payload ({"content": …}, at most TEXT_LIMIT bytes), or 0."""
    if not isinstance(payload, Mapping) or not payload.get("content"):
        return E.EMPTY_TEXT_CONTENT
    if len(str(payload["content"]).encode("utf-8")) > TEXT_LIMIT:
        return E.CONTENT_TOO_LARGE
    return 0


def _check_app_payload(msgtype: str, payload: Any) -> int:
    """The errcode for a bad message/send payload, or 0."""
    if msgtype in ("text", "markdown"):
        return _check_text(payload)
    if not isinstance(payload, Mapping):
        return E.EMPTY_PARAMETER
    if msgtype in ("image", "voice", "video", "file"):
        return 0 if payload.get("media_id") else E.MISSING_MEDIA_ID
    if msgtype == "textcard":
        if not payload.get("title"):
            return E.MISSING_TITLE
        if not payload.get("description"):
            return E.MISSING_DESCRIPTION
        return 0 if payload.get("url") else E.MISSING_URL
    if msgtype in ("news", "mpnews"):
        articles = payload.get("articles")
        if msgtype == "mpnews" and not articles and payload.get("media_id"):
            return 0
        if not isinstance(articles, list) or not articles:
            return E.EMPTY_PARAMETER
        if len(articles) > 8:
            return E.TOO_MANY_ARTICLES
        ok = all(isinstance(a, Mapping) and a.get("title") for a in articles)
        return 0 if ok else E.MISSING_TITLE
    if msgtype == "template_card":
        return 0 if payload.get("card_type") else E.EMPTY_PARAMETER
    if msgtype == "miniprogram_notice":
        return 0 if payload.get("appid") and payload.get("title") else E.EMPTY_PARAMETER
    return 0


def _check_kf_payload(msgtype: str, payload: Any) -> int:
    """The errcode for a bad kf/send_msg (or send_msg_on_event) payload, or 0."""
    if msgtype == "text":
        return _check_text(payload)
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
