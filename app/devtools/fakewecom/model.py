"""The fake WeCom server's state and its rules, behind one lock. No sockets here: ``server.py``
does the HTTP.

The parts, one module each: ``tokens`` (apps, gettoken, access_token checks), ``message_send``,
``kf_inbox`` (what customers write, kf/sync_msg, kf/account/list), ``kf_send`` (kf/send_msg,
kf/send_msg_on_event), ``faults``, ``journal`` (request log, sent messages) and ``clock``.
:class:`FakeWeComState` owns one of each, routes API calls to them and is what the HTTP layer and
the control API talk to. Handler threads and control calls interleave freely: every public
method takes the lock.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.devtools.fakewecom import errcodes as E
from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.faults import ANY_ENDPOINT, ENDPOINTS, FAULT_KINDS, Fault, FaultQueues
from app.devtools.fakewecom.journal import Journal
from app.devtools.fakewecom.kf_inbox import KfInbox
from app.devtools.fakewecom.kf_send import KfSender
from app.devtools.fakewecom.kf_state import KfState
from app.devtools.fakewecom.message_send import AppMessages
from app.devtools.fakewecom.protocol import (
    Call,
    ControlError,
    Reply,
    error,
    has_non_ascii_escape,
    parse_json_body,
)
from app.devtools.fakewecom.tokens import App, Credentials

__all__ = [
    "ANY_ENDPOINT",
    "ENDPOINTS",
    "FAULT_KINDS",
    "App",
    "ControlError",
    "FakeWeComState",
    "Fault",
    "Reply",
    "has_non_ascii_escape",
]


@dataclasses.dataclass(frozen=True)
class _Route:
    handler: Callable[[Call], Reply]
    auth: str | None  # None, "app" (any valid token) or "kf" (a token allowed the kf APIs)
    body: str | None  # None, "json" (a JSON object is required) or "optional"


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
        self._clock = FakeClock(clock)
        self._credentials = Credentials(corp_id, apps, self._clock, expires_in)
        self._journal = Journal(self._clock, self._lock)
        self._faults = FaultQueues()
        self._kf = KfState()
        self._kf_inbox = KfInbox(self._kf, self._clock)
        self._kf_sender = KfSender(self._kf, self._clock, self._journal)
        self._app_messages = AppMessages(self._credentials, self._journal, known_users, self._clock)
        for account in kf_accounts:
            if isinstance(account, str):
                self.add_kf_account(account)
            else:
                self.add_kf_account(str(account["open_kfid"]), account.get("name"))
        self._routes: dict[str, _Route] = {
            "gettoken": _Route(self._credentials.gettoken, None, None),
            "message/send": _Route(self._app_messages.send, "app", "json"),
            "kf/sync_msg": _Route(self._kf_inbox.sync_msg, "kf", "json"),
            "kf/send_msg": _Route(self._kf_sender.send_msg, "kf", "json"),
            "kf/send_msg_on_event": _Route(self._kf_sender.send_msg_on_event, "kf", "json"),
            "kf/account/list": _Route(self._kf_inbox.account_list, "kf", "optional"),
        }

    # -- configuration ------------------------------------------------------------------------
    @property
    def corp_id(self) -> str:
        return self._credentials.corp_id

    @property
    def expires_in(self) -> int:
        return self._credentials.expires_in

    @property
    def known_users(self) -> set[str] | None:
        return self._app_messages.known_users

    @property
    def gettoken_calls(self) -> int:
        with self._lock:
            return self._journal.by_endpoint["gettoken"]

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._credentials.tokens_issued

    def reset(self) -> None:
        """Forget everything that happened; keep corp, apps, accounts and settings."""
        with self._lock:
            self._clock.reset()
            self._credentials.reset()
            self._journal.reset()
            self._faults.clear()
            self._kf.reset()
            self._app_messages.reset()

    def add_app(self, app: App) -> None:
        with self._lock:
            self._credentials.add_app(app)

    def add_kf_account(self, open_kfid: str, name: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self._kf_inbox.add_account(open_kfid, name)

    def configure(self, *, expires_in: int | None = None) -> dict[str, Any]:
        with self._lock:
            self._credentials.configure(expires_in)
            return {"expires_in": self._credentials.expires_in}

    # -- clock --------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock.now()

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward (tokens, codes and kf windows age accordingly)."""
        with self._lock:
            return self._clock.advance(seconds)

    # -- faults -------------------------------------------------------------------------------
    def add_faults(
        self, endpoint: str, faults: Iterable[Fault | Mapping[str, Any]], count: int = 1
    ) -> dict[str, int]:
        with self._lock:
            return self._faults.add(endpoint, faults, count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> dict[str, int]:
        with self._lock:
            return self._faults.pending()

    def take_fault(self, endpoint: str) -> Fault | None:
        """The next fault for ``endpoint``: its own queue first, then the global one."""
        with self._lock:
            return self._faults.take(endpoint)

    # -- tokens -------------------------------------------------------------------------------
    def expire_tokens(self, token: str | None = None) -> int:
        """Make one token (or all) answer 42001 from now on."""
        with self._lock:
            return self._credentials.expire(token)

    def revoke_tokens(self, token: str | None = None) -> int:
        """Forget one token (or all): it answers 40014 from now on."""
        with self._lock:
            return self._credentials.revoke(token)

    # -- API requests -------------------------------------------------------------------------
    def begin(
        self,
        method: str,
        endpoint: str,
        query: Mapping[str, str],
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Log a request as it arrives and return its log entry."""
        with self._lock:
            return self._journal.begin(method, endpoint, query, content_type)

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
        if raw_body:
            try:
                entry["body"] = json.loads(raw_body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                entry["body"] = raw_body.decode("utf-8", "replace")
        if fault is not None:
            if fault.kind == "errcode":
                return error(int(fault.errcode or 0))
            if fault.kind == "http":
                return Reply(status=fault.status, text=f"<html><body>{fault.status}</body></html>")
            if fault.kind == "token_expired":
                token = query.get("access_token")
                if token:
                    self._credentials.expire(token)
                return error(E.ACCESS_TOKEN_EXPIRED)
        route = self._routes[entry["endpoint"]]
        app = None
        if route.auth is not None:
            app, err = self._credentials.authenticate(query, kf=route.auth == "kf")
            if err:
                return err
        body: dict[str, Any] = {}
        if route.body == "json" or (route.body == "optional" and raw_body.strip()):
            body, err = parse_json_body(raw_body)
            if err:
                return err
        return route.handler(Call(query=query, body=body, app=app, fault=fault))

    # -- control: kf --------------------------------------------------------------------------
    def enqueue_kf(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add customer messages, events or servicer messages; see ``KfInbox.enqueue``."""
        with self._lock:
            return self._kf_inbox.enqueue(spec)

    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        """Force a session's service_state (0–4) to test send_msg refusals."""
        with self._lock:
            return self._kf_sender.set_session(open_kfid, external_userid, state)

    # -- observation --------------------------------------------------------------------------
    def sent(self, api: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Accepted messages in order (from position ``after``), optionally of one API."""
        with self._lock:
            return self._journal.sent(api, after)

    def sent_page(self, api: str | None, after: int) -> tuple[list[dict[str, Any]], int]:
        """(the messages from position ``after`` on, optionally of one API; how many in all)."""
        with self._lock:
            return self._journal.sent(api, after), self._journal.sent_count

    def wait_sent(
        self, after: int, timeout: float, cancelled: Callable[[], bool] = lambda: False
    ) -> int:
        """Block until more than ``after`` messages were sent, ``timeout`` passes or
        ``cancelled()`` (checked when :meth:`wake_waiters` runs); return how many were sent."""
        with self._lock:
            return self._journal.wait_sent(after, timeout, cancelled)

    def wake_waiters(self) -> None:
        """End every pending :meth:`wait_sent` (the server is stopping)."""
        with self._lock:
            self._journal.wake_all()

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return self._journal.requests(endpoint)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": self.now(),
                "gettoken_calls": self._journal.by_endpoint["gettoken"],
                "tokens_issued": self._credentials.tokens_issued,
                "requests_by_endpoint": dict(self._journal.by_endpoint),
                "sent": self._journal.sent_count,
                "pending_faults": self._faults.pending(),
                "kf_messages": len(self._kf.log),
                "waiting": self._journal.waiting,
            }
