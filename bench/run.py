"""Every benchmark in one run: ``.venv/bin/python -m bench.run``.

1. Scenario A (bench/plain_callbacks.py): the service and the two references side by side on one
   request set: req/s, p50/p99, server CPU per callback, ratios, correctness sampler, fairness.
2. Memory (bench/memory.py): one worker with 1,000 slow callbacks open.
3. Scenario B (bench/slow_callbacks.py): bursts of 1,000 slow callbacks on 2 workers, late
   delivery through the fake WeCom API (``BENCH_SLOW=0`` skips it).

The bench-only packages (bench/requirements.txt: FastAPI, uvicorn, py-spy) are installed into this
interpreter first when they are missing; wrk comes from the system (``apt-get install -y wrk``).
Progress goes to stderr, results to stdout. See bench/README.md for every figure.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import time

from .common import BENCH_DIR, pin_this_process

BENCH_PACKAGES = ("fastapi", "uvicorn")


def install_bench_requirements() -> None:
    """``pip install -r bench/requirements.txt`` into this interpreter when a package is missing."""
    if all(importlib.util.find_spec(name) for name in BENCH_PACKAGES):
        return
    print("[bench] installing bench/requirements.txt", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-r", str(BENCH_DIR / "requirements.txt")],
        check=True,
    )


def main() -> int:
    from . import memory, plain_callbacks, slow_callbacks, slow_report
    from .wrkrun import wrk_path

    install_bench_requirements()
    if not wrk_path():
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    pinned = pin_this_process()
    started = time.monotonic()
    print(
        f"WeCom callback service benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"servers on CPU 0, wrk and this process on CPU 1 ({'pinned' if pinned else 'NOT pinned'})"
    )
    sys.stdout.flush()
    plain = plain_callbacks.run_plain()
    memories = memory.run_memory()
    slow = slow_callbacks.run_slow() if os.environ.get("BENCH_SLOW", "1") != "0" else []

    print("\nScenario A, plain callbacks (medians over rounds):")
    plain_callbacks.report(plain)
    print("\nMemory per worker:")
    print("\n".join(f"  {figures.describe()}" for figures in memories))
    if slow:
        print("\nScenario B, slow handlers at scale:")
        slow_report.print_report(slow)
    print(f"\nWhole benchmark: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
