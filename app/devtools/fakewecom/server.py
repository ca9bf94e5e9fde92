"""The HTTP side of the fake: a real server on 127.0.0.1 speaking WeCom's API and a control API.

API:      /cgi-bin/gettoken, /cgi-bin/message/send, /cgi-bin/kf/{sync_msg,send_msg,
          send_msg_on_event,account/list}
Control:  /_fake/... (JSON), described in ``tests/fakewecom/__init__.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.devtools.fakewecom.model import (
    ENDPOINTS,
    App,
    ControlError,
    FakeWeComState,
    Fault,
    Reply,
)

log = logging.getLogger(__name__)

API_PREFIX = "/cgi-bin/"
CONTROL_PREFIX = "/_fake/"
MAX_BODY = 4 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default backlog of 5 resets bursts of new connections

    def __init__(self, address: tuple[str, int], state: FakeWeComState) -> None:
        self.state = state
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_request, args=(request, client_address), daemon=True
        )
        with self.conn_lock:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _run_request(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken client must not kill the fake
            log.debug("fakewecom: request from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            with self.conn_lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fakewecom: error on %s", client_address, exc_info=True)

    def close_connections(self, join_timeout: float) -> None:
        """Cut every open connection (keep-alive or delayed) and wait for handlers to end."""
        with self.conn_lock:
            conns = list(self.connections)
            threads = list(self.threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + join_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server_version = "fakewecom/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this
    # One buffered write per answer and no Nagle: headers and body in separate small segments
    # would otherwise meet the client's delayed ACK and stall every call by ~40 ms.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry tokens and secrets; the request log has everything."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing -----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(Reply(status=400, text="bad Content-Length"))
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length else b""
        path = parsed.path
        if path.startswith(API_PREFIX):
            self._api(method, path[len(API_PREFIX) :].strip("/"), query, raw)
        elif path.startswith(CONTROL_PREFIX):
            self._control(method, path[len(CONTROL_PREFIX) :].strip("/"), query, raw)
        else:
            self._send(Reply(status=404, text="not found"))

    def _api(self, method: str, endpoint: str, query: dict[str, str], raw: bytes) -> None:
        state = self.server.state
        if endpoint not in ENDPOINTS:
            self._send(Reply(status=404, text="not found"))
            return
        entry = state.begin(method, endpoint, query, self.headers.get("Content-Type"))
        fault = state.take_fault(endpoint)
        if fault is not None and fault.kind == "delay":
            # Interruptible, so stop() does not wait for a long delay to finish.
            state.note(entry, fault="delay")
            self.server.stopping.wait(fault.seconds)
            if self.server.stopping.is_set():
                self._drop()
                return
            fault = None
        if fault is not None and fault.kind == "drop":
            state.note(entry, fault="drop")
            self._drop()
            return
        reply = state.handle(entry, query, raw, fault)
        if reply.drop:
            self._drop()
            return
        self._send(reply)

    def _drop(self) -> None:
        """Close the socket without a byte of answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, reply: Reply) -> None:
        if reply.body is not None:
            payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
            ctype = "application/json; charset=UTF-8"
        else:
            payload = (reply.text or "").encode("utf-8")
            ctype = "text/html; charset=UTF-8"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            # The client gave up (timeout) while we were delayed: nothing to answer to.
            self.close_connection = True

    # -- control API --------------------------------------------------------------------------
    def _control(self, method: str, action: str, query: dict[str, str], raw: bytes) -> None:
        state = self.server.state
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ControlError("the body must be a JSON object")
            result = _control_action(state, method, action, query, body)
        except (ControlError, ValueError, KeyError, TypeError) as exc:
            self._send(Reply(status=400, body={"errcode": 400, "errmsg": str(exc)}))
            return
        if result is None:
            self._send(Reply(status=404, body={"errcode": 404, "errmsg": f"no {action!r}"}))
            return
        self._send(Reply(body={"errcode": 0, "errmsg": "ok", **result}))


def _control_action(
    state: FakeWeComState,
    method: str,
    action: str,
    query: Mapping[str, str],
    body: dict[str, Any],
) -> dict[str, Any] | None:
    """Run one control call; None when there is no such action."""
    if method == "GET":
        if action == "health":
            return {"ok": True}
        if action == "sent":
            return {"sent": state.sent(query.get("api"))}
        if action == "requests":
            return {"requests": state.requests(query.get("endpoint"))}
        if action == "stats":
            return state.stats()
        return None
    if (action == "faults" and method == "DELETE") or action == "faults/clear":
        state.clear_faults()
        return {"pending": {}}
    if method != "POST":
        return None
    if action == "faults":
        faults = body.get("faults")
        if faults is None:
            faults = [{k: v for k, v in body.items() if k not in ("endpoint", "count")}]
        pending = state.add_faults(
            str(body.get("endpoint", "*")), faults, int(body.get("count", 1))
        )
        return {"pending": pending}
    if action == "kf/enqueue":
        return state.enqueue_kf(body)
    if action == "kf/accounts":
        return {"account": state.add_kf_account(str(body["open_kfid"]), body.get("name"))}
    if action == "kf/session":
        return {
            "session": state.set_session(
                str(body["open_kfid"]), str(body["external_userid"]), int(body["state"])
            )
        }
    if action == "tokens/expire":
        return {"expired": state.expire_tokens(body.get("token"))}
    if action == "tokens/revoke":
        return {"revoked": state.revoke_tokens(body.get("token"))}
    if action == "clock":
        return {"now": state.advance(float(body.get("advance", 0)))}
    if action == "config":
        expires_in = body.get("expires_in")
        return state.configure(expires_in=int(expires_in) if expires_in is not None else None)
    if action == "apps":
        agent_id = body.get("agent_id")
        state.add_app(
            App(
                secret=str(body["secret"]),
                agent_id=int(agent_id) if agent_id is not None else None,
                kf=bool(body.get("kf", True)),
            )
        )
        return {}
    if action == "reset":
        state.reset()
        return {}
    return None


class FakeWeCom:
    """A fake WeCom API server on 127.0.0.1, for tests in this process or others.

    >>> with FakeWeCom(corp_id="wwcorp", secret="s3cret", agent_id=1000002) as fake:
    ...     fake.base_url   # "http://127.0.0.1:PORT/cgi-bin/"

    Several secrets: ``secret``/``agent_id`` is the app, ``kf_secret`` an optional separate
    微信客服 secret, and :meth:`add_app` adds more. ``kf_accounts`` are the open_kfids.
    """

    def __init__(
        self,
        *,
        corp_id: str = "wwfakecorp000001",
        secret: str = "fake-app-secret",
        agent_id: int | None = 1000002,
        kf_secret: str | None = None,
        kf_accounts: Iterable[str] = ("wkFAKEKF000001",),
        expires_in: int = 7200,
        known_users: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake only listens on the loopback interface")
        apps = [App(secret=secret, agent_id=agent_id)]
        if kf_secret is not None:
            apps.append(App(secret=kf_secret, agent_id=None))
        self.state = FakeWeComState(
            corp_id,
            apps,
            expires_in=expires_in,
            kf_accounts=kf_accounts,
            known_users=known_users,
            clock=clock,
        )
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.kf_secret = kf_secret
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeWeCom:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fakewecom",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections(join_timeout)
        server.server_close()
        if self._thread is not None:
            self._thread.join(join_timeout)
            self._thread = None

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def base_url(self) -> str:
        """What a client uses as api_base."""
        return self.url + "cgi-bin/"

    @property
    def control_url(self) -> str:
        return self.url + "_fake/"

    # -- in-process shortcuts (the same as the control API) -----------------------------------
    @property
    def gettoken_calls(self) -> int:
        return self.state.gettoken_calls

    def add_app(self, secret: str, agent_id: int | None = None, *, kf: bool = True) -> None:
        self.state.add_app(App(secret=secret, agent_id=agent_id, kf=kf))

    def add_faults(
        self, endpoint: str, *faults: Fault | Mapping[str, Any], count: int = 1
    ) -> dict[str, int]:
        return self.state.add_faults(endpoint, faults, count)

    def fault(self, endpoint: str, kind: str, *, count: int = 1, **params: Any) -> None:
        """Queue ``count`` faults of one kind, e.g. ``fault("message/send", "errcode",
        errcode=-1)`` or ``fault("*", "delay", seconds=2)``."""
        self.state.add_faults(endpoint, [{"kind": kind, **params}], count)

    def enqueue_kf(self, spec: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.state.enqueue_kf({**(spec or {}), **kwargs})

    def sent(self, api: str | None = None) -> list[dict[str, Any]]:
        return self.state.sent(api)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self.state.requests(endpoint)

    def expire_tokens(self, token: str | None = None) -> int:
        return self.state.expire_tokens(token)

    def revoke_tokens(self, token: str | None = None) -> int:
        return self.state.revoke_tokens(token)

    def advance(self, seconds: float) -> float:
        return self.state.advance(seconds)

    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        return self.state.set_session(open_kfid, external_userid, state)

    def reset(self) -> None:
        self.state.reset()
