"""CPU time from /proc, for the benchmarks: a process with its children, this process, the
whole machine (so a run can say how busy the rest of the box was)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and of its live children (gunicorn's workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent pid
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS  # minus idle and iowait


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    """CPU seconds used so far by the service processes, redis-server, this process, the box."""

    service: float
    redis: float
    generator: float
    machine: float

    @classmethod
    def take(cls, service_pids: list[int], redis_pid: int) -> CpuSample:
        service = sum(cpu_seconds(pid) for pid in service_pids)
        return cls(service, cpu_seconds(redis_pid), own_cpu_seconds(), machine_busy_seconds())
