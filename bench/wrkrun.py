"""Drive ``wrk`` with bench/wrk_callbacks.lua over a pool file and read back its figures."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .common import BENCH_DIR, CLIENT_CPU, pinned

LUA_SCRIPT = BENCH_DIR / "wrk_callbacks.lua"


def wrk_path() -> str | None:
    """The wrk binary, or None (``apt-get install -y wrk``)."""
    return shutil.which("wrk")


@dataclass
class WrkResult:
    figures: dict[str, float]
    command: list[str]

    def _us(self, name: str) -> float:
        return self.figures[name] / 1e6

    @property
    def duration(self) -> float:
        return self._us("duration_us")

    @property
    def p50(self) -> float:
        return self._us("lat_p50")

    @property
    def p99(self) -> float:
        return self._us("lat_p99")

    @property
    def max(self) -> float:
        return self._us("lat_max")

    @property
    def answers(self) -> int:
        return int(self.figures["requests"])

    @property
    def replies(self) -> int:
        """200 answers carrying a passive reply."""
        return int(self.figures["replies"])

    @property
    def empty(self) -> int:
        return int(self.figures["empty"])

    @property
    def non_200(self) -> int:
        return int(self.figures["other"])

    @property
    def sent(self) -> int:
        return int(self.figures["sent"])

    @property
    def socket_errors(self) -> int:
        f = self.figures
        return int(f["err_connect"] + f["err_read"] + f["err_write"] + f["err_timeout"])

    @property
    def exhausted(self) -> bool:
        return self.figures["exhausted"] > 0

    @property
    def throughput(self) -> float:
        """Callbacks answered per second (all statuses)."""
        return self.answers / self.duration if self.duration > 0 else float("nan")


def run_wrk(
    url: str,
    pool_file: Path,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout: float = 30.0,
    sample: Path | None = None,
    sample_every: int = 50,
) -> WrkResult:
    """One wrk run on CLIENT_CPU; raises RuntimeError when wrk fails or prints no figures.

    With ``sample``, every ``sample_every``-th passive reply of thread k is kept in the file
    ``<sample>.<k>`` (see bench/sampler.py).
    """
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    threads = max(1, min(threads, connections))
    command = [
        binary,
        "--threads",
        str(threads),
        "--connections",
        str(connections),
        "--duration",
        f"{max(round(seconds), 1)}s",
        "--timeout",
        f"{round(timeout)}s",
        "--script",
        str(LUA_SCRIPT),
        url,
        "--",
        str(pool_file),
        str(threads),
    ]
    if sample is not None:
        command += [str(sample), str(sample_every)]
    command = pinned(command, CLIENT_CPU)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + timeout + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return WrkResult(json.loads(line.removeprefix("BENCHJSON ")), command)
    raise RuntimeError(
        f"wrk exited with {done.returncode} and no figures:\n{done.stdout}\n{done.stderr}"
    )
