"""What every benchmark needs: the keys, gunicorn processes on loopback, percentiles, settings.

Servers listen on 127.0.0.1 only, on a port picked free. Each server is a process group of its
own, started here and stopped here by its pid (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
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

#: The CPU every measured server is pinned to, and the one the load generators (wrk, and this
#: process with its Python generator) are pinned to, so that they never compete for a core.
SERVER_CPU = 0
CLIENT_CPU = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

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


def pinned(command: list[str], cpu: int | str | None) -> list[str]:
    """``command`` run on ``cpu`` (a CPU, or a taskset list such as ``0,1``), or as it is when
    taskset is missing.

    With ``BENCH_NICE`` (e.g. ``-10``, as root), the measured processes also run at that
    priority, so that other work on a shared machine disturbs the figures less.
    """
    nice = env_int("BENCH_NICE", 0)
    if nice:
        command = ["nice", "-n", str(nice), *command]
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None or (os.cpu_count() or 1) <= max(SERVER_CPU, CLIENT_CPU):
        return command
    return [taskset, "-c", str(cpu), *command]


def pin_this_process() -> bool:
    """Move the benchmark process (and the Python load generator in it) to CLIENT_CPU."""
    if (os.cpu_count() or 1) <= CLIENT_CPU or not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, {CLIENT_CPU})
    return True


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (a server and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time so far of ``pids`` (from /proc; ended processes count 0)."""
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def cpu_busy_seconds(cpu: int) -> float:
    """Seconds CPU ``cpu`` has been busy (not idle, not waiting for I/O), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(value) for value in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _CLOCK_TICKS
    return math.nan


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


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
        health_path: str = "/healthz",
    ) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.port = port
        self.cwd = cwd
        self.health_path = health_path
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
                with urllib.request.urlopen(self.url + self.health_path, timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.output()[-3000:]}")

    @property
    def pids(self) -> list[int]:
        """The server's live processes (its process group: a master and its workers)."""
        return group_pids(self.process.pid) if self.process is not None else []

    @property
    def workers(self) -> list[int]:
        """The processes of the group other than the one started (gunicorn's workers); the
        process itself when it has none (uvicorn with one worker)."""
        if self.process is None:
            return []
        others = [pid for pid in self.pids if pid != self.process.pid]
        return others or [self.process.pid]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids)

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
    worker_class: str | None,
    store_path: Path,
    *,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
    cpu: int | str | None = None,
) -> Server:
    """The callback service as deployed: ``gunicorn -c gunicorn.conf.py wsgi:app``.

    ``worker_class`` None keeps gunicorn.conf.py's default class. Everything else not given here
    or in ``extra_env`` (the access log among them) is gunicorn.conf.py's default.
    """
    port = free_port()
    env = clean_environment()
    env.update(
        GUNICORN_BIND=f"{HOST}:{port}",
        WEB_CONCURRENCY=str(workers),
        GUNICORN_GRACEFUL_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
        WECOM_TOKEN=TOKEN,
        WECOM_AES_KEY=AES_KEY,
        WECOM_CORP_ID=CORP_ID,
        WECOM_STORE=f"sqlite:///{store_path.resolve()}",  # absolute path: four slashes
    )
    if worker_class is not None:
        env["GUNICORN_WORKER_CLASS"] = worker_class
    env.update(extra_env or {})
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    return Server(name, pinned(command, cpu), env, port)


def baseline_server(
    name: str = "wechatpy", worker_class: str = "gevent", cpu: int | None = None
) -> Server:
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
    return Server(name, pinned(command, cpu), env, port, cwd=BENCH_DIR)


def fastapi_server(name: str = "fastapi", cpu: int | None = None) -> Server:
    """bench/reference_fastapi.py under uvicorn, one process, uvicorn's defaults otherwise."""
    port = free_port()
    env = clean_environment()
    env.update(
        PYTHONUNBUFFERED="1", BENCH_TOKEN=TOKEN, BENCH_AES_KEY=AES_KEY, BENCH_CORP_ID=CORP_ID
    )
    # The service's package on the path: the reference uses app.wecom.WXBizMsgCrypt.
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "reference_fastapi:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "5",
    ]
    return Server(name, pinned(command, cpu), env, port, cwd=BENCH_DIR)


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
