"""What every benchmark needs: the keys, gunicorn processes on loopback, percentiles, settings.

Servers listen on 127.0.0.1 only, on a port picked free. Each server is a process group of its
own, started here and stopped here by its pid (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"

# The app the benchmarks play WeCom for. Fixed, obviously fake keys: nothing here is secret.
TOKEN = "benchtoken2024"
AES_KEY = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI"  # 43 characters, decodes to 32 bytes
CORP_ID = "wwbench000000001"
AGENT_ID = "1000002"
SECRET = "bench-app-secret"


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(math.ceil(pct / 100.0 * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def clean_environment() -> dict[str, str]:
    """This process's environment without any WeCom or gunicorn setting of the caller's."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WECOM_", "GUNICORN_", "BENCH_"))
        and key not in ("T_TOKEN", "C_TOKEN", "WEB_CONCURRENCY", "PORT")
    }


# Lines of a gunicorn/app log that mean something went wrong (not the info chatter).
_TROUBLE = re.compile(r"Traceback|\bERROR\b|\[ERROR\]|\[CRITICAL\]|WORKER TIMEOUT|Exception")


class Server:
    """One gunicorn process group on 127.0.0.1:port, its output in a temporary file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str],
        port: int,
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.port = port
        self.cwd = cwd
        self.url = f"http://{HOST}:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process: subprocess.Popen[bytes] | None = None
        self.exited_early: int | None = None  # exit status if it ended before stop()

    def start(self, timeout: float = 30.0) -> Server:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def trouble(self) -> list[str]:
        """Log lines that report an error (tracebacks, ERROR, worker timeouts), and an early
        exit of the server."""
        lines = [line for line in self.output().splitlines() if _TROUBLE.search(line)]
        if self.exited_early is not None:
            lines.insert(0, f"the server exited on its own with status {self.exited_early}")
        return lines

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is not None:
            if self.exited_early is None:
                self.exited_early = self.process.returncode
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def close(self) -> None:
        self.stop()
        self.log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def service_server(
    name: str,
    worker_class: str,
    store_path: Path,
    *,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Server:
    """The callback service as deployed: ``gunicorn -c gunicorn.conf.py wsgi:app``."""
    port = free_port()
    env = clean_environment()
    env.update(
        GUNICORN_BIND=f"{HOST}:{port}",
        GUNICORN_WORKER_CLASS=worker_class,
        WEB_CONCURRENCY=str(workers),
        GUNICORN_ACCESSLOG="",
        GUNICORN_GRACEFUL_TIMEOUT="5",
        # gunicorn 27 opens a control socket at one fixed path per user; concurrent servers
        # (ours, or another engineer's tests) would take it from one another.
        GUNICORN_CMD_ARGS="--no-control-socket",
        PYTHONUNBUFFERED="1",
        WECOM_TOKEN=TOKEN,
        WECOM_AES_KEY=AES_KEY,
        WECOM_CORP_ID=CORP_ID,
        WECOM_STORE=f"sqlite:///{store_path.resolve()}",  # absolute path: four slashes
    )
    env.update(extra_env or {})
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    return Server(name, command, env, port)


def baseline_server(name: str = "wechatpy", worker_class: str = "gevent") -> Server:
    """bench/baseline_wechatpy.py under gunicorn, one worker, no config file.

    It runs from bench/ so that gunicorn does not pick up the service's ./gunicorn.conf.py.
    """
    port = free_port()
    env = clean_environment()
    env.update(
        PYTHONUNBUFFERED="1",
        BENCH_TOKEN=TOKEN,
        BENCH_AES_KEY=AES_KEY,
        BENCH_CORP_ID=CORP_ID,
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        worker_class,
        "--workers",
        "1",
        "--worker-connections",
        "1000",
        "--keep-alive",
        "5",
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--bind",
        f"{HOST}:{port}",
        "baseline_wechatpy:app",
    ]
    return Server(name, command, env, port, cwd=BENCH_DIR)


def job_states(store_path: Path) -> dict[str, int]:
    """How many jobs the service's SQLite store holds in each state (read-only look)."""
    if not store_path.exists():
        return {}
    uri = f"file:{store_path.resolve()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    except sqlite3.Error as exc:
        return {f"unreadable: {exc}": 0}
    return {str(state): int(count) for state, count in rows}


def fmt_ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.1f}"


def fmt_ratio(numerator: float, denominator: float) -> str:
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return "-"
    return f"{numerator / denominator:.2f}"
