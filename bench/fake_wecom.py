"""The fake WeCom API (``python -m app.devtools.fakewecom``) as a process of the benchmark.

It listens on a free loopback port in its own process group, prints its API base URL, and is
stopped by that group. Scenario B points the service's ``WECOM_API_BASE`` at it and reads what
reached ``message/send`` through its control API (``/_fake/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import urllib.request

from .common import AGENT_ID, CORP_ID, HOST, PROJECT_ROOT, SECRET


class FakeWeComProcess:
    """``python -m app.devtools.fakewecom`` on a free loopback port, in its own process group."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()

    @staticmethod
    def available() -> bool:
        return (PROJECT_ROOT / "app" / "devtools" / "fakewecom" / "__main__.py").is_file()

    def start(self, timeout: float = 15.0) -> FakeWeComProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.devtools.fakewecom",
                "--port",
                "0",
                "--corp-id",
                CORP_ID,
                "--secret",
                SECRET,
                "--agent-id",
                AGENT_ID,
                "--max-lifetime",
                "300",
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.stop()
                raise RuntimeError(f"the fake WeCom printed no URL within {timeout} s")
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith(f"http://{HOST}:"):
            self.stop()
            self.stderr.seek(0)
            raise RuntimeError(f"the fake WeCom said {line!r}: {self.stderr.read()[-2000:]!r}")
        self.base_url = line
        return self

    @property
    def control_url(self) -> str:
        return self.base_url.removesuffix("cgi-bin/") + "_fake/"

    def get(self, action: str) -> dict:
        with urllib.request.urlopen(self.control_url + action, timeout=5) as answer:
            return json.loads(answer.read())

    def post(self, action: str) -> dict:
        request = urllib.request.Request(self.control_url + action, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()
