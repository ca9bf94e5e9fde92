"""Run the real service under gunicorn with gevent workers, on a loopback port no one can take.

gunicorn gets a listening socket this process bound (``GUNICORN_BIND=fd://N``), so there is no
moment between choosing a port and binding it. A command that cannot take a socket (``python -m
app -p=PORT``, ``flask run --port PORT``) gets a port that was free a moment ago and is started
again on another one if it finds that port taken.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: What gunicorn and werkzeug print when the port is taken.
PORT_TAKEN = ("Connection in use", "Address already in use")
PORT_ATTEMPTS = 3


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def free_port() -> int:
    """A port that was free a moment ago: only for commands that cannot take a socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_shot_simulator(url: str, timeout: float = 30.0):
    """A simulator sending each callback on a new connection, closed after it, as WeCom's
    retries come: none is pinned to one worker by keep-alive, and none holds a worker open
    when the service stops (an idle keep-alive connection delays a graceful stop)."""
    from app.devtools.simulator import Simulator, requests_transport
    from tests.conftest import AES_KEY, CORP_ID, TOKEN

    def send(method, target, query, body):
        with requests.Session() as session:
            return requests_transport(timeout=timeout, session=session)(method, target, query, body)

    return Simulator(url + "/", TOKEN, AES_KEY, CORP_ID, transport=send)


class LiveService:
    """``python -m gunicorn -c gunicorn.conf.py wsgi:app`` with the given settings, or the
    ``command`` built for a port."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 2,
        worker_class: str | None = None,
        command: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("WECOM_") and k not in ("T_TOKEN", "C_TOKEN")
        }
        self.env.update(WEB_CONCURRENCY=str(workers), GUNICORN_ACCESSLOG="", PYTHONUNBUFFERED="1")
        if worker_class:
            self.env["GUNICORN_WORKER_CLASS"] = worker_class
        self.env.update(env)
        self.command = command
        self._listener: socket.socket | None = None
        if command is None:
            self._listener = listening_socket()
            self.port = self._listener.getsockname()[1]
        else:
            self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()/__exit__
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, ready: tuple[int, ...] = (200,)) -> LiveService:
        """Start, and wait until /healthz answers with a status in ``ready``."""
        try:
            for attempt in range(PORT_ATTEMPTS):
                if attempt:
                    self.port = free_port()
                self._spawn()
                if self._wait_ready(timeout, ready):
                    return self
            raise RuntimeError(f"the port was taken {PORT_ATTEMPTS} times:\n{self.output()}")
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        self.log.seek(0)
        self.log.truncate()
        env = dict(self.env)
        if self._listener is not None:
            fd = self._listener.fileno()
            env["GUNICORN_BIND"] = f"fd://{fd}"
            command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
            pass_fds: tuple[int, ...] = (fd,)
        else:
            assert self.command is not None
            command, pass_fds = self.command(self.port), ()
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        if self._listener is not None:  # gunicorn holds it now; a stopped service refuses
            self._listener.close()
            self._listener = None

    def _wait_ready(self, timeout: float, ready: tuple[int, ...] = (200,)) -> bool:
        """True once /healthz answers; False when the port turned out to be taken."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self._port_taken():
                    return False
                code = self.process.returncode
                raise RuntimeError(f"service exited with {code}:\n{self.output()}")
            if self._port_taken():
                self.kill()
                return False
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code in ready:
                    return True
            except requests.RequestException:
                time.sleep(0.05)  # connection refused: not listening yet
        self.stop()
        raise RuntimeError(f"service not ready after {timeout} s:\n{self.output()}")

    def _port_taken(self) -> bool:
        return self.command is not None and any(text in self.output() for text in PORT_TAKEN)

    def health(self) -> tuple[int, dict]:
        """/healthz's status and report, on a connection closed afterwards."""
        with requests.Session() as session:
            response = session.get(
                self.url + "/healthz", headers={"Connection": "close"}, timeout=5
            )
            return response.status_code, response.json()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the arbiter)."""
        assert self.process is not None
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 (after the parenthesised command name) is the parent pid.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                children.append(int(entry.name))
        return children

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, as a supervisor stops it; SIGKILL if it is still there after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole process group: arbiter and workers die without cleanup."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def close(self) -> None:
        self.stop()
        self.log.close()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> LiveService:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()
