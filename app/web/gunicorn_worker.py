"""The gunicorn worker class: gunicorn's ``gevent`` worker, with a stop that does not wait for
idle clients.

gunicorn's ``gevent`` class was chosen by measurement (bench/connections.py): it closes idle and
stalled connections after ``keepalive`` seconds and logs one line per malformed request, where
``gevent_pywsgi`` kept thousands of idle sockets open for ever. Its stop, though, waits for every
connection: a keep-alive client waiting for its next request holds the stop for up to
``keepalive`` seconds, and the worker notices the stop and the drained pool only once a second,
so a restart behind nginx's upstream pool or WeCom's reused connections took over 3 s.

On SIGTERM this worker hangs up, at once, every connection that is waiting for its next request
and has none arriving: that wait ends as if ``keepalive`` had run out, and the connection closes.
Requests in flight finish, with ``Connection: close`` (gunicorn's own behaviour once the worker
is no longer alive). Closing an idle keep-alive connection is what HTTP allows at any time
(RFC 9112 §9.8); a client sending on it at that very moment sees it close and sends again, as
WeCom does for callbacks in any case.

Import only what the worker needs: gunicorn's master imports this module before it forks, and
anything imported here is imported in every worker before gevent patches the standard library.
"""

from __future__ import annotations

import contextlib
import select
import signal
from collections.abc import Iterator
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

#: A stopping worker's connection that is waiting for a request waits at most this long.
STOPPING_WAIT = 0.001
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


class GracefulGeventWorker(GeventWorker):
    """gunicorn's ``gevent`` worker with the stop described in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[Any, Any] = {}  # connection greenlet -> its socket
        self._waiting: dict[Any, gevent.Timeout] = {}  # greenlets waiting for a request

    def init_signals(self) -> None:
        super().init_signals()
        # A stop signal that came between the fork and now ran the master's handler, which only
        # queued it in this process's copy of the arbiter (``post_fork`` in gunicorn.conf.py
        # hands that queue over): without this the stop is lost and the worker serves on until
        # it is killed.
        if _STOP_SIGNALS & _drained(getattr(self, "signals_before_init", None)):
            self.handle_exit(signal.SIGTERM, None)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = _CloseWhenStopping(self.wsgi, self)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        me = gevent.getcurrent()
        self._clients[me] = client
        try:
            super().handle(listener, client, addr)
        finally:
            self._clients.pop(me, None)

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """The wait for a connection's next request: ``keepalive`` seconds, or, once the worker
        stops, none at all unless bytes are already arriving."""
        me = gevent.getcurrent()
        seconds = self.cfg.keepalive
        if not self.alive and not _arriving(self._clients.get(me)):
            seconds = STOPPING_WAIT
        # False: the timeout ends the wait quietly; gunicorn then closes the connection.
        with gevent.Timeout(seconds, False) as timeout:
            self._waiting[me] = timeout
            try:
                yield
            finally:
                self._waiting.pop(me, None)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # A signal handler may run inside any greenlet: leave the work to a new one.
        gevent.spawn(self._hang_up_idle)

    def _hang_up_idle(self) -> None:
        for greenlet, timeout in list(self._waiting.items()):
            if greenlet is gevent.getcurrent() or _arriving(self._clients.get(greenlet)):
                continue
            # Raising the wait's own timeout in it ends the wait exactly as its expiry would.
            gevent.get_hub().loop.run_callback(greenlet.throw, timeout)


class _CloseWhenStopping:
    """The WSGI app, answering with ``Connection: close`` once the worker stops.

    gunicorn decides that only when a request starts; a request already running when SIGTERM
    comes would otherwise answer keep-alive on a connection the stopping worker then closes.
    Anything else (``extensions`` for the gunicorn.conf.py hooks) is the app's own.
    """

    def __init__(self, app: Any, worker: GracefulGeventWorker) -> None:
        self._app = app
        self._worker = worker

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            response = getattr(start_response, "__self__", None)  # gunicorn's Response
            if not self._worker.alive and response is not None:
                response.force_close()
            return start_response(status, headers, exc_info)

        return self._app(environ, start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def _drained(queue: Any) -> set[int]:
    """The signals in the arbiter's queue (a list or, in gunicorn 27, a SimpleQueue)."""
    found: set[int] = set()
    if queue is None:
        return found
    if isinstance(queue, list):
        found.update(queue)
        return found
    with contextlib.suppress(Exception):  # Empty ends it; nothing here may stop the worker
        for _ in range(64):
            found.add(queue.get_nowait())
    return found


def _arriving(sock: Any) -> bool:
    """Bytes (or the client's own close) are waiting to be read on this connection."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)
