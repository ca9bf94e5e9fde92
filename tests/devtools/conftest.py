"""Helpers for the dev tools' tests: the app served over real HTTP on loopback, a port that
refuses connections, and a child process whose first line of output is awaited (bounded)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

#: Variables that decide where the simulator looks for the service; tests set their own.
LOCATION_VARIABLES = (
    "WECOM_SIMULATE_URL",
    "GUNICORN_BIND",
    "PORT",
    "FLASK_RUN_PORT",
    "FLASK_RUN_HOST",
)


@pytest.fixture(autouse=True)
def no_location_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOCATION_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def served(app: Flask) -> Iterator[int]:
    """Serve ``app`` on a free loopback port from a thread; yield the port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def first_output(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    """What ``proc`` printed on stdout up to (at least) its first line, waiting at most
    ``timeout`` seconds for it."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(f"no line within {timeout} s; got {buffer!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"exited ({proc.wait(5)}) after {buffer!r}")
            buffer += chunk
    return buffer.decode("utf-8")


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM the process group we started (SIGKILL if it lingers); (exit code, the rest of
    stdout, stderr)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=5)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
