"""Run the real service under gunicorn with gevent workers, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
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
    """``python -m gunicorn -c gunicorn.conf.py wsgi:app`` with the given settings."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 2,
        worker_class: str | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("WECOM_") and k not in ("T_TOKEN", "C_TOKEN")
        }
        self.env.update(
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY=str(workers),
            GUNICORN_ACCESSLOG="",
            PYTHONUNBUFFERED="1",
        )
        if worker_class:
            self.env["GUNICORN_WORKER_CLASS"] = worker_class
        self.env.update(env)
        self.command = command or [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "wsgi:app",
        ]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()/__exit__
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, ready: tuple[int, ...] = (200,)) -> LiveService:
        """Start, and wait until /healthz answers with a status in ``ready``."""
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.output()
                self.log.close()
                raise RuntimeError(f"service exited with {self.process.returncode}:\n{output}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code in ready:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        output = self.output()
        self.log.close()
        raise RuntimeError(f"service not ready after {timeout} s:\n{output}")

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

    def __enter__(self) -> LiveService:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.log.close()
