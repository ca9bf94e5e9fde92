"""One client must not be able to stop the service: idle sockets, stalled requests and malformed
requests against the default gunicorn configuration (2 workers)."""

from __future__ import annotations

import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService, one_shot_simulator

pytestmark = pytest.mark.e2e

IDLE_SOCKETS = 2500  # more than 2 workers x 1000 connections


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_STORE": f"sqlite:///{tmp_path_factory.mktemp('s') / 'state.db'}",
        "GUNICORN_ACCESSLOG": "-",  # with the access log on: one access line per request
    }
    with LiveService(env, workers=2) as live:
        yield live


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed ``sock`` (EOF or reset), None if it stayed open."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


MALFORMED = [
    b"\x00 x\r\n\r\n",
    b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n",
]


def test_a_malformed_request_writes_one_log_line_at_most(service):
    """First in this module: no other test's lines can arrive while it counts."""
    before = len(service.output().splitlines())
    for payload in MALFORMED * 10:
        sock = connect(service.port)
        with contextlib.closing(sock), contextlib.suppress(OSError):
            sock.sendall(payload)
            sock.recv(4096)
    time.sleep(0.5)  # the last lines reach the log file
    # The readiness probe's access line may reach the file late (stdout and stderr are written
    # separately): it is not one of these requests' lines.
    lines = service.output().splitlines()[before:]
    written = [line for line in lines if '"GET /healthz ' not in line]
    assert len(written) <= len(MALFORMED) * 10, "\n".join(written)
    assert "Traceback" not in service.output()


def test_a_callback_is_answered_beside_2500_idle_sockets(service):
    idle = []
    try:
        for _ in range(IDLE_SOCKETS):
            idle.append(connect(service.port))
        result = one_shot_simulator(service.url, timeout=10).send_text("still answering")
        assert result.reply["Content"] == "still answering"
        print(f"callback beside {IDLE_SOCKETS} idle sockets: {result.elapsed:.2f} s")
        assert result.elapsed < 3.0
    finally:
        for sock in idle:
            sock.close()


def stalled_headers(port: int) -> float | None:
    sock = connect(port)
    with contextlib.closing(sock):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
        return closed_within(sock, 15)


def stalled_body(port: int) -> bytes:
    sock = connect(port)
    with contextlib.closing(sock):
        stamp = str(int(time.time())).encode()
        sock.sendall(
            b"POST /?msg_signature=a&nonce=1&timestamp=" + stamp + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000\r\n\r\n<xml>"
        )
        sock.settimeout(15)
        return sock.recv(4096)


def test_stalled_requests_are_closed_in_bounded_time(service):
    with ThreadPoolExecutor(2) as pool:
        headers = pool.submit(stalled_headers, service.port)
        body = pool.submit(stalled_body, service.port)
        assert headers.result() is not None  # closed (after GUNICORN_KEEPALIVE, 2 s)
        assert body.result().startswith(b"HTTP/1.1 408")  # after 5 s without the body
