"""The fake's HTTP plumbing: a threading server on loopback that routes ``/cgi-bin/`` to the
state and ``/_fake/`` to the control API, with faults that delay or drop the connection."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.devtools.fakewecom.control_api import run_control
from app.devtools.fakewecom.faults import ENDPOINTS
from app.devtools.fakewecom.model import FakeWeComState
from app.devtools.fakewecom.protocol import ControlError, Reply

log = logging.getLogger(__name__)

API_PREFIX = "/cgi-bin/"
CONTROL_PREFIX = "/_fake/"
MAX_BODY = 4 * 1024 * 1024


class FakeHTTPServer(ThreadingHTTPServer):
    """One thread per connection, each tracked so :meth:`close_connections` can cut it."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default backlog of 5 resets bursts of new connections

    def __init__(self, address: tuple[str, int], state: FakeWeComState) -> None:
        self.state = state
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.conn_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
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
    server: FakeHTTPServer

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
        if fault is not None and fault.kind == "delay_after":
            # Processed already: a client that gives up meanwhile sees a timeout.
            self.server.stopping.wait(fault.seconds)
            if self.server.stopping.is_set():
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
            result = run_control(state, method, action, query, body, self.server.stopping.is_set)
        except (ControlError, ValueError, KeyError, TypeError) as exc:
            self._send(Reply(status=400, body={"errcode": 400, "errmsg": str(exc)}))
            return
        if result is None:
            self._send(Reply(status=404, body={"errcode": 404, "errmsg": f"no {action!r}"}))
            return
        self._send(Reply(body={"errcode": 0, "errmsg": "ok", **result}))
