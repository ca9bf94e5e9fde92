"""The gunicorn worker class: gevent pywsgi, with a stop that does not wait for idle clients.

gunicorn's own gevent workers stop, on SIGTERM, by closing the listener and then waiting until
every connection's greenlet has ended, for up to ``graceful_timeout``. Under pywsgi a keep-alive
connection's greenlet waits for the client's next request with no time limit, so one idle client
(a test's HTTP session, nginx's upstream ``keepalive`` pool, WeCom's own connection reuse) makes
every stop and every restart last the whole ``graceful_timeout``, after which the requests still
in flight are killed as well.

On SIGTERM this worker

* stops accepting connections at once;
* hangs up every connection that is waiting for its next request and has none arriving (reading
  is shut down, so its greenlet sees the end of the stream and ends as if the client had gone);
* lets the requests in flight finish and closes their connections after the response
  (``Connection: close`` when the headers have not gone out yet);
* exits as soon as no connection is left, or after ``graceful_timeout`` as before.

Closing an idle keep-alive connection is what HTTP allows at any time (RFC 9112 §9.8); a client
that sends on it at that very moment sees the connection close and sends again, which WeCom does
for callbacks in any case.

Import only what the worker needs: gunicorn's master imports this module before it forks, and
anything imported here is imported in every worker before gevent patches the standard library.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gunicorn.http.wsgi import base_environ
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import VERSION, GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

#: How often the worker tells the arbiter it is alive (the arbiter's ``timeout`` is 30 s).
HEARTBEAT_SECONDS = 1.0


class _Server(PyWSGIServer):
    """Knows which of its connections are waiting between requests, and whether it is stopping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = False
        self.waiting: set[_Handler] = set()

    def hang_up_idle(self) -> None:
        self.stopping = True
        for handler in list(self.waiting):
            handler.hang_up_if_idle()


class _Handler(PyWSGIHandler):
    server: _Server

    def read_requestline(self) -> str:
        if self.server.stopping and not self._request_arriving():
            return ""  # an empty request line: the connection closes
        self.server.waiting.add(self)
        try:
            return super().read_requestline()
        finally:
            self.server.waiting.discard(self)

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        if self.server.stopping and not any(n.lower() == "connection" for n, _ in headers):
            headers = [*headers, ("Connection", "close")]  # pywsgi then closes after the body
        return super().start_response(status, headers, exc_info)

    def handle_one_response(self) -> None:
        super().handle_one_response()
        if self.server.stopping:  # the stop began after the headers went out
            self.close_connection = True

    def hang_up_if_idle(self) -> None:
        """Shut down reading unless a request is on its way; the greenlet then sees EOF."""
        if self._request_arriving():
            return
        # AttributeError: the handler has finished and dropped its socket.
        with contextlib.suppress(OSError, AttributeError):
            self.socket.shutdown(socket.SHUT_RD)

    def _request_arriving(self) -> bool:
        """Bytes (or the client's own close) are waiting to be read on this connection."""
        try:
            readable, _, _ = select.select([self.socket.fileno()], [], [], 0)
        except (OSError, ValueError, AttributeError):
            return False
        return bool(readable)


class GracefulGeventWorker(GeventPyWSGIWorker):
    """gunicorn's ``gevent_pywsgi`` worker with the stop described in the module docstring."""

    server_class = _Server
    wsgi_handler = _Handler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._servers: list[_Server] = []
        self._exit_requested: Event | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # A signal handler may run inside any greenlet: leave the work to a new one.
        gevent.spawn(self._begin_stop)

    def _begin_stop(self) -> None:
        for server in self._servers:
            if not server.closed:
                server.close()
            server.hang_up_idle()
        if self._exit_requested is not None:
            self._exit_requested.set()

    def run(self) -> None:
        exit_requested = self._exit_requested = Event()
        self._servers = [self._serve(listener) for listener in self.sockets]
        while self.alive:
            self.notify()
            exit_requested.wait(HEARTBEAT_SECONDS)
        self._begin_stop()  # again: connections accepted since the signal are covered too
        self._drain()

    def _serve(self, listener: Any) -> _Server:
        listener.setblocking(1)
        environ = base_environ(self.cfg)
        environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
        extra = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        server = self.server_class(
            listener,
            application=self.wsgi,
            spawn=Pool(self.worker_connections),
            log=self.log,
            handler_class=self.wsgi_handler,
            environ=environ,
            **extra,
        )
        server.start()
        return server

    def _drain(self) -> None:
        """Wait for the requests in flight, up to graceful_timeout; then cut the rest."""
        give_up_at = time.monotonic() + self.cfg.graceful_timeout
        for server in self._servers:
            while not server.pool.join(timeout=min(HEARTBEAT_SECONDS, _left(give_up_at))):
                if _left(give_up_at) <= 0:
                    self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                    for each in self._servers:
                        each.pool.kill(block=True, timeout=1)
                    return
                self.notify()


def _left(until: float) -> float:
    return max(until - time.monotonic(), 0.0)
