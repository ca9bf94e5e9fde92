"""Hostile connections against both gevent worker classes: idle sockets, stalled requests,
malformed requests. Prints figures; asserts nothing.

    .venv/bin/python -m bench.connections            # both classes, about 2.5 minutes

For each worker class, two workers (gunicorn's defaults otherwise, access log on as deployed):

* idle: 2,500 sockets opened and never used, then one callback on a new connection: how long
  it takes, and how many of the idle sockets the server has closed 10 s later;
* stalled headers: a request line and headers sent one byte a second (up to 30 s): when the
  server closes the connection;
* stalled body: headers announcing 1,000 bytes, 10 sent, then nothing (up to 30 s): when the
  server answers or closes;
* malformed: 100 each of a NUL request line, a 64 KB URL and 101 headers: log lines written.

Every socket goes to 127.0.0.1 only and is closed by this script; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from app.devtools.simulator import Simulator

from .common import AES_KEY, CORP_ID, HOST, TOKEN, service_server

IDLE_SOCKETS = int(os.environ.get("BENCH_IDLE_SOCKETS", "2500"))
STALL_SECONDS = 30.0
CLASSES = os.environ.get("BENCH_CONNECTION_CLASSES", "gevent_pywsgi,gevent").split(",")


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.settimeout(None)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def one_callback(url: str, timeout: float = 15.0) -> float | None:
    from app.devtools.simulator import requests_transport

    wecom = Simulator(
        url + "/", TOKEN, AES_KEY, CORP_ID, transport=requests_transport(timeout=timeout)
    )
    started = time.monotonic()
    try:
        result = wecom.send_text("ping")
    except Exception:
        return None
    return time.monotonic() - started if result.status == 200 else None


def idle_sockets(port: int, url: str) -> dict[str, object]:
    sockets = []
    try:
        for _ in range(IDLE_SOCKETS):
            sockets.append(connect(port))
        time.sleep(0.5)
        answered = one_callback(url)
        time.sleep(10)
        closed = sum(closed_by_peer(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return {"callback_s": answered, "idle_closed_after_10s": closed}


def stalled_headers(port: int) -> float | None:
    """Seconds until the server closed a connection whose headers come a byte a second."""
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Slow: " + b"a" * 40
    sock = connect(port)
    started = time.monotonic()
    try:
        for byte in request:
            if time.monotonic() - started > STALL_SECONDS:
                return None
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - started
            time.sleep(1.0)
            if closed_by_peer(sock):
                return time.monotonic() - started
        return None
    finally:
        sock.close()


def stalled_body(port: int) -> tuple[float | None, str]:
    """Seconds until the server answered or closed a request whose body stops short."""
    sock = connect(port)
    sock.settimeout(STALL_SECONDS)
    started = time.monotonic()
    try:
        now = str(int(time.time())).encode()
        sock.sendall(
            b"POST /?msg_signature=a&timestamp=" + now + b"&nonce=1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"<xml>12345"
        )
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None, "no answer"
        status = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
        return time.monotonic() - started, status
    finally:
        sock.close()


MALFORMED = {
    "nul": b"\x00 x\r\n\r\n",
    "64k-url": b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "101-headers": b"GET / HTTP/1.1\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(101))
    + b"\r\n",
}


def malformed(port: int, server) -> dict[str, float]:
    lines: dict[str, float] = {}
    for name, payload in MALFORMED.items():
        before = server.output().count("\n")
        for _ in range(100):
            with contextlib.closing(connect(port)) as sock:
                sock.settimeout(5)
                with contextlib.suppress(OSError):
                    sock.sendall(payload)
                    sock.recv(4096)
        time.sleep(0.5)
        lines[name] = (server.output().count("\n") - before) / 100
    return lines


def measure(worker_class: str, workdir: Path) -> dict[str, object]:
    server = service_server(
        f"conn-{worker_class}",
        worker_class,
        workdir / f"{worker_class}.db",
        workers=2,
        extra_env={"GUNICORN_ACCESSLOG": "-"},
    )
    with server:
        progress(f"{worker_class}: {IDLE_SOCKETS} idle sockets")
        result: dict[str, object] = idle_sockets(server.port, server.url)
        progress(f"{worker_class}: stalled headers and body")
        result["stalled_headers_closed_s"] = stalled_headers(server.port)
        result["stalled_body"] = stalled_body(server.port)
        progress(f"{worker_class}: malformed requests")
        result["log_lines_per_malformed"] = malformed(server.port, server)
        result["tracebacks"] = server.output().count("Traceback")
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        for worker_class in CLASSES:
            figures = measure(worker_class, Path(workdir))
            print(f"{worker_class}: {figures}", flush=True)


if __name__ == "__main__":
    main()
