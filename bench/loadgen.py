"""A small gevent load generator: N keep-alive HTTP/1.1 connections replaying a request pool.

It uses gevent's own sockets and does not monkey-patch anything, so the rest of the benchmark
process (subprocesses, urllib) keeps working normally. Each request is sent once; the run stops
at whichever comes first: the pool is used up, ``duration`` has passed, or (``per_connection``)
each connection has sent its share. Every response records its latency, status and body size,
and which connection carried it, so starvation of some connections shows up.

Run alone against any URL (a smoke test; the scenarios import :func:`run_load`)::

    .venv/bin/python -m bench.loadgen http://127.0.0.1:8000/ --connections 64 --seconds 5

The benchmark process shares the 2 cores with the server, so this generator costs the server
some CPU; wrk (bench/wrkrun.py) costs far less and is preferred for throughput figures.
"""

from __future__ import annotations

import argparse
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import gevent
from gevent import socket as gsocket
from gevent.event import Event

from .common import median, percentile
from .workers import raise_open_files


class ConnectionClosed(Exception):
    """The server closed the connection before a whole response arrived."""


@dataclass
class Sample:
    connection: int
    sent_at: float  # seconds since the start of the run
    latency: float  # seconds from the first byte sent to the last byte received
    status: int
    body_len: int
    body: bytes | None = None  # kept only with keep_bodies
    request: int = -1  # the request's index in the pool


@dataclass
class LoadResult:
    connections: int
    duration: float  # seconds from the start to the last answer (or the stop)
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    unsent: int = 0  # requests of the pool never sent
    pool_exhausted: bool = False
    per_connection: list[int] = field(default_factory=list)  # answers per connection
    open_seconds: float = 0.0  # from the start to every connection open (or the wait's end)

    @property
    def latencies(self) -> list[float]:
        return [s.latency for s in self.samples]

    def pct(self, p: float) -> float:
        return percentile(self.latencies, p)

    @property
    def send_spread(self) -> float:
        """Seconds between the first and the last request sent (of those answered)."""
        sent = [s.sent_at for s in self.samples]
        return max(sent) - min(sent) if sent else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.duration if self.duration > 0 else float("nan")

    def summary(self) -> dict[str, float]:
        counts = self.per_connection or [0]
        return {
            "answers": len(self.samples),
            "errors": sum(self.errors.values()),
            "status_200": sum(1 for s in self.samples if s.status == 200),
            "empty_200": sum(1 for s in self.samples if s.status == 200 and s.body_len == 0),
            "p50": self.pct(50),
            "p99": self.pct(99),
            "max": max(self.latencies, default=float("nan")),
            "throughput": self.throughput,
            "conn_min": min(counts),
            "conn_median": median(counts),
            "conn_max": max(counts),
        }


class _Reader:
    """Reads HTTP/1.1 responses off one socket (Content-Length, chunked, or until close)."""

    def __init__(self, sock: gsocket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed()
        self.buf += chunk

    def _until(self, separator: bytes) -> bytes:
        while True:
            at = self.buf.find(separator)
            if at >= 0:
                data = bytes(self.buf[:at])
                del self.buf[: at + len(separator)]
                return data
            self._fill()

    def _exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def response(self) -> tuple[int, bytes, bool]:
        """(status, body, whether the connection stays open)."""
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status = head[0].split(" ", 2)[:2]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        keep_alive = version == "HTTP/1.1"
        if "close" in headers.get("connection", ""):
            keep_alive = False
        if "chunked" in headers.get("transfer-encoding", ""):
            parts = []
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")
                    break
                parts.append(self._exactly(size))
                self._exactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            while True:
                try:
                    self._fill()
                except ConnectionClosed:
                    break
            body, keep_alive = bytes(self.buf), False
            self.buf.clear()
        return int(status), body, keep_alive


def run_load(
    host: str,
    port: int,
    pool: Sequence[bytes],
    *,
    connections: int,
    duration: float,
    timeout: float = 30.0,
    per_connection: int | None = None,
    keep_bodies: bool = False,
    connect_timeout: float = 5.0,
) -> LoadResult:
    """Replay ``pool`` (whole raw HTTP requests) over ``connections`` keep-alive connections.

    All connections are opened first, then released together. Bounded by ``len(pool)``
    requests and by ``duration`` seconds of sending (a request in flight gets ``timeout`` more).
    The soft open-files limit of this process is raised to fit the connections when it can be.
    """
    raise_open_files(connections + 64)
    start = Event()
    result = LoadResult(connections=connections, duration=0.0)
    result.per_connection = [0] * connections
    cursor = 0
    ready = 0  # connections that tried to open their socket and now wait for the start
    began = 0.0
    stop_at = 0.0

    def open_socket() -> tuple[gsocket.socket, _Reader]:
        sock = gsocket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        sock.settimeout(None)
        return sock, _Reader(sock)

    def close(sock: gsocket.socket | None) -> None:
        if sock is not None:
            sock.close()

    def connection(index: int) -> None:
        nonlocal cursor, ready
        sock: gsocket.socket | None = None
        reader: _Reader | None = None
        try:
            sock, reader = open_socket()
        except OSError as exc:
            result.errors[f"connect: {type(exc).__name__}"] += 1
        ready += 1
        start.wait()
        sent_here = 0
        while time.perf_counter() < stop_at:
            if per_connection is not None and sent_here >= per_connection:
                break
            if cursor >= len(pool):
                result.pool_exhausted = True
                break
            request_index = cursor
            request = pool[cursor]
            cursor += 1
            sent_here += 1
            sent_at = time.perf_counter()
            try:
                if sock is None or reader is None:
                    sock, reader = open_socket()
                with gevent.Timeout(timeout):
                    sock.sendall(request)
                    status, body, keep_alive = reader.response()
            except gevent.Timeout:
                result.errors["timeout"] += 1
                close(sock)
                sock = reader = None
                continue
            except (OSError, ConnectionClosed, ValueError) as exc:
                result.errors[f"{type(exc).__name__}"] += 1
                close(sock)
                sock = reader = None
                continue
            finished = time.perf_counter()
            result.samples.append(
                Sample(
                    connection=index,
                    sent_at=sent_at - began,
                    latency=finished - sent_at,
                    status=status,
                    body_len=len(body),
                    body=body if keep_bodies else None,
                    request=request_index,
                )
            )
            result.per_connection[index] += 1
            if not keep_alive:
                close(sock)
                sock = reader = None
        close(sock)

    opening = time.perf_counter()
    greenlets = [gevent.spawn(connection, index) for index in range(connections)]
    gevent.sleep(0)
    # Let every connection open (bounded), then release them all at once.
    opened_by = time.monotonic() + connect_timeout + 1
    while time.monotonic() < opened_by and ready < connections:
        gevent.sleep(0.01)
    began = time.perf_counter()
    result.open_seconds = began - opening
    stop_at = began + duration
    start.set()
    gevent.joinall(greenlets, timeout=duration + timeout + 5)
    result.duration = time.perf_counter() - began
    gevent.killall([g for g in greenlets if not g.ready()], block=True, timeout=5)
    result.unsent = max(len(pool) - cursor, 0)
    return result


def main(argv: list[str] | None = None) -> int:
    from .pool import CallbackFactory

    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("url", help="the callback URL, e.g. http://127.0.0.1:8000/")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=20000, help="pool size (upper bound)")
    args = parser.parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("load goes to the loopback interface only")
    host, port = "127.0.0.1", url.port or 80
    factory = CallbackFactory(path=url.path or "/")
    pool = [c.raw_http(f"{host}:{port}") for c in factory.texts(args.requests)]
    result = run_load(host, port, pool, connections=args.connections, duration=args.seconds)
    for name, value in result.summary().items():
        if name in ("p50", "p99", "max"):
            print(f"{name + ' ms':>12}: {value * 1000:.1f}")
        elif name == "throughput":
            print(f"{'req/s':>12}: {value:.0f}")
        else:
            print(f"{name:>12}: {value:g}")
    if result.errors:
        print("errors:", dict(result.errors))
    if result.pool_exhausted:
        print("warning: the pool ran out before the time did")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
