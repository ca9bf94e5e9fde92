"""Memory per worker with 1,000 slow callbacks open at once.

One service worker (CPU 0, gunicorn.conf.py defaults otherwise) runs bench/slow_handlers.py with
2 s handlers; 1,000 connections (the Python generator, CPU 1) each send one callback at the same
moment. While they are open, the worker's resident memory (VmRSS from /proc) is read every 20 ms.
The figures: RSS before the burst, its peak, the growth per open callback, and how the burst was
answered (passive replies within WeCom's 5 s).

    .venv/bin/python -m bench.memory

Settings (environment): BENCH_MEMORY_CALLBACKS (1000), BENCH_MEMORY_HANDLER (2 s),
BENCH_MEMORY_CLASSES (``default,gevent``: the worker classes to measure; ``default`` is the class
gunicorn.conf.py chooses), BENCH_MEMORY_TREE (the service of another source tree, e.g. a
prototype exported with ``git archive``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .common import (
    HOST,
    SERVER_CPU,
    env_float,
    env_int,
    fmt_ms,
    pin_this_process,
    rss_bytes,
    service_server,
)
from .loadgen import run_load
from .pool import CallbackFactory

WECOM_BUDGET = 5.0


@dataclass
class MemoryFigures:
    worker_class: str
    callbacks: int
    handler_seconds: float
    rss_before: int = 0
    rss_peak: int = 0
    answered: int = 0
    replies: int = 0
    within_budget: int = 0
    p50: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    errors: int = 0

    @property
    def per_callback(self) -> float:
        return (self.rss_peak - self.rss_before) / self.callbacks if self.callbacks else 0.0

    def describe(self) -> str:
        mib = 2**20
        return (
            f"{self.worker_class}: {self.callbacks} open callbacks ({self.handler_seconds:g} s "
            f"handlers): worker RSS {self.rss_before / mib:.1f} MiB before, peak "
            f"{self.rss_peak / mib:.1f} MiB, {self.per_callback / 1024:.1f} KiB per open callback; "
            f"{self.answered} answered, {self.replies} passive replies, {self.within_budget} "
            f"within {WECOM_BUDGET:g} s, p50 {fmt_ms(self.p50)} ms, p99 {fmt_ms(self.p99)} ms, "
            f"max {fmt_ms(self.max)} ms, errors {self.errors}"
        )


def measure(worker_class: str, callbacks: int, handler_seconds: float) -> MemoryFigures:
    figures = MemoryFigures(worker_class, callbacks, handler_seconds)
    factory = CallbackFactory()
    env = {"WECOM_HANDLERS": "bench.slow_handlers", "BENCH_HANDLER_SECONDS": f"{handler_seconds:g}"}
    with tempfile.TemporaryDirectory(prefix="wecom-bench-memory-") as tmp:
        server = service_server(
            f"memory-{worker_class}",
            None if worker_class == "default" else worker_class,
            Path(tmp) / "store.db",
            extra_env=env,
            cpu=SERVER_CPU,
        )
        if os.environ.get("BENCH_MEMORY_TREE"):
            server.cwd = Path(os.environ["BENCH_MEMORY_TREE"]).resolve()
        with server:
            host = f"{HOST}:{server.port}"
            # Warm the worker (imports, the store, a handler greenlet) before the baseline.
            warm = [c.raw_http(host) for c in factory.texts(20, users=20, tag="warm-")]
            run_load(HOST, server.port, warm, connections=20, duration=1, per_connection=1)
            (worker,) = server.workers
            figures.rss_before = rss_bytes(worker)
            peak = [figures.rss_before]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    peak[0] = max(peak[0], rss_bytes(worker))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            pool = [c.raw_http(host) for c in factory.texts(callbacks, users=callbacks, tag="m-")]
            try:
                load = run_load(
                    HOST,
                    server.port,
                    pool,
                    connections=callbacks,
                    duration=2.0,
                    timeout=30.0,
                    per_connection=1,
                )
            finally:
                stop.set()
                sampler.join(5)
            figures.rss_peak = peak[0]
    summary = load.summary()
    figures.answered = int(summary["answers"])
    figures.replies = int(summary["status_200"] - summary["empty_200"])
    figures.within_budget = sum(1 for s in load.samples if s.latency <= WECOM_BUDGET)
    figures.p50, figures.p99, figures.max = summary["p50"], summary["p99"], summary["max"]
    figures.errors = int(summary["errors"]) + (len(load.samples) - int(summary["status_200"]))
    return figures


def run_memory() -> list[MemoryFigures]:
    callbacks = env_int("BENCH_MEMORY_CALLBACKS", 1000)
    handler_seconds = env_float("BENCH_MEMORY_HANDLER", 2.0)
    raw = os.environ.get("BENCH_MEMORY_CLASSES") or "default,gevent"
    results = []
    for worker_class in [name.strip() for name in raw.split(",") if name.strip()]:
        figures = measure(worker_class, callbacks, handler_seconds)
        print(f"[bench] memory {figures.describe()}", file=sys.stderr, flush=True)
        results.append(figures)
    return results


def main() -> int:
    pin_this_process()
    started = time.monotonic()
    for figures in run_memory():
        print(figures.describe())
    print(f"(memory took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
