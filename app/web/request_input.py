"""Reading a callback request defensively: its body under a hard cap whatever the framing, its
timestamp against the replay window, and the earliest arrival time that can be trusted."""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.infra.greenlets import gevent_patched

READ_SIZE = 64 * 1024
#: A body that has not arrived this many seconds after its headers is not coming (WeCom waits 5 s
#: for the whole answer); the connection is closed with 408 instead of being held open.
BODY_SECONDS = 5.0
#: Environ key of the arrival time stamped by :func:`stamp_arrival` (``time.monotonic()``).
ARRIVAL_KEY = "wecom.arrived_at"
#: An arrival header further back than this is not believed (a wrong clock, not a queue).
MAX_QUEUE_SECONDS = 30.0
TIMESTAMP_DIGITS = 12  # a Unix time in seconds has 10; anything longer is no timestamp


class BodyTooLarge(Exception):
    """The body is over the cap; the rest of it was not read."""


class BodyTimeout(Exception):
    """The body did not arrive within BODY_SECONDS."""


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most ``limit`` bytes, whatever its framing.

    With a Content-Length, a larger one is refused before reading. Without one (chunked), the
    body is read as far as ``limit + 1`` bytes, never further, and refused when it gets there:
    a body is never cut short silently. A server that does not end such a stream itself (no
    ``wsgi.input_terminated``) gives an empty body rather than an unbounded read. A body that
    stalls is given up after BODY_SECONDS (BodyTimeout).
    """
    stream = environ.get("wsgi.input")
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        if not declared.isdigit():
            raise ValueError("Content-Length is not a number")
        length = int(declared)
        if length > limit:
            raise BodyTooLarge
        want = length
    elif environ.get("wsgi.input_terminated"):
        want = limit + 1
    else:
        return b""
    if stream is None:
        return b""
    with _time_limit(BODY_SECONDS):
        parts, size = [], 0
        while size < want:
            part = stream.read(min(READ_SIZE, want - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    if size > limit:
        raise BodyTooLarge
    return b"".join(parts)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Under gevent, interrupt a read stalled for ``seconds`` (BodyTimeout). A threaded server
    (``flask run``) has its own socket timeouts, or none: there the read is not bounded here."""
    if not gevent_patched():
        yield
        return
    import gevent

    with gevent.Timeout(seconds, BodyTimeout()):
        yield


def timestamp_skew(timestamp: str, now: float) -> float | None:
    """Seconds between a callback's ``timestamp`` and ``now`` (positive: in the past);
    None when it is not a Unix time in seconds."""
    if not timestamp.isdigit() or len(timestamp) > TIMESTAMP_DIGITS:
        return None
    return now - int(timestamp)


class TrustedProxies:
    """``FORWARDED_ALLOW_IPS``: addresses (or networks, or ``*``) whose headers are believed."""

    def __init__(self, spec: Iterable[str]) -> None:
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in spec:
            item = item.strip()
            if item == "*":
                self.any = True
            elif item:
                self.networks.append(ipaddress.ip_network(item, strict=False))

    def __contains__(self, address: object) -> bool:
        if self.any:
            return True
        if not isinstance(address, str) or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a unix socket peer, or nothing
        return any(ip in network for network in self.networks)


def stamp_arrival(wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI middleware: record when the request reached the application, before Flask's own
    work, for budgets counted from arrival."""

    def stamped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ.setdefault(ARRIVAL_KEY, time.monotonic())
        return wsgi_app(environ, start_response)

    return stamped


def arrival_time(environ: dict[str, Any], trusted: TrustedProxies) -> float:
    """The earliest trustworthy arrival time of the request, on the ``time.monotonic`` clock.

    Behind nginx, ``X-Request-Start: t=<seconds since the epoch>`` (``t=${msec}``) from a trusted
    proxy counts the time the request spent queued before this process read it. Otherwise the
    time the WSGI application was entered (:func:`stamp_arrival`), or now.
    """
    mono_now, wall_now = time.monotonic(), time.time()
    arrived = min(environ.get(ARRIVAL_KEY, mono_now), mono_now)
    header = environ.get("HTTP_X_REQUEST_START")
    if not header or environ.get("REMOTE_ADDR") not in trusted:
        return arrived
    started = _request_start(header)
    if started is None:
        return arrived
    queued = wall_now - started
    if not 0.0 < queued <= MAX_QUEUE_SECONDS:
        return arrived  # from the future, or too far back to be a queue: a clock problem
    return min(arrived, mono_now - queued)


def _request_start(header: str) -> float | None:
    """Seconds since the epoch from ``t=1700000000.123`` (nginx ``$msec``), or in milliseconds
    or microseconds as other proxies send it."""
    value = header.strip().removeprefix("t=")
    if len(value) > 32:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number != number or number <= 0:  # NaN
        return None
    while number > 1e11:  # milliseconds or microseconds: no Unix time in seconds is that big
        number /= 1000.0
    return number
