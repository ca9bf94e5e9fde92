"""Two workers against one: ``python -m bench.worker_scaling``.

The service as deployed (``gunicorn -c gunicorn.conf.py wsgi:app``, SQLite, the echo handler
module) with ``WEB_CONCURRENCY`` 1 and 2, measured in turn, the order alternating each round,
each round with freshly signed distinct callbacks (as scenario A). The workers are not pinned:
with 2 workers on this 2-core machine the second shares CPU 1 with wrk (pinned there, as in
scenario A), so the 2-worker figure is a lower bound of what a second core gives. Printed per
set-up: medians over the rounds of req/s, p99 and CPU per callback (all the server's processes),
and the ratio of 2 workers to 1. Settings: ``BENCH_SCALING_ROUNDS`` (6), ``BENCH_SCALING_SECONDS``
(per round, 3), ``BENCH_CONNECTIONS`` (64).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .common import env_float, env_int, fmt_ms, median, service_server
from .pool import CallbackFactory, write_wrk_pool
from .wrkrun import run_wrk

HEADROOM = 4000  # callbacks per second the pool must cover, so that it never runs out


def main() -> int:
    rounds = env_int("BENCH_SCALING_ROUNDS", 6)
    seconds = env_float("BENCH_SCALING_SECONDS", 3.0)
    connections = env_int("BENCH_CONNECTIONS", 64)
    factory = CallbackFactory()
    figures: dict[int, dict[str, list[float]]] = {
        n: {"rps": [], "p99": [], "cpu": []} for n in (1, 2)
    }
    with tempfile.TemporaryDirectory(prefix="wecom-scaling-") as tmp:
        workdir = Path(tmp)
        servers = {
            n: service_server(f"{n} worker(s)", None, workdir / f"store-{n}.db", workers=n)
            for n in (1, 2)
        }
        try:
            for server in servers.values():
                server.start()
            for index in range(rounds):
                order = (1, 2) if index % 2 == 0 else (2, 1)
                for n in order:
                    callbacks = factory.texts(int(HEADROOM * seconds), tag=f"s{index}-{n}-")
                    pool_file = workdir / f"pool-{index}-{n}.txt"
                    write_wrk_pool(pool_file, callbacks)
                    server = servers[n]
                    cpu_before = server.cpu_seconds()
                    result = run_wrk(
                        server.url + "/", pool_file, connections=connections, seconds=seconds
                    )
                    if result.exhausted:
                        raise RuntimeError("the callback pool ran out: raise HEADROOM")
                    cpu = server.cpu_seconds() - cpu_before
                    figures[n]["rps"].append(result.throughput)
                    figures[n]["p99"].append(result.p99)
                    figures[n]["cpu"].append(cpu / result.answers)
                    print(
                        f"[bench] round {index + 1}, {n} worker(s): {result.throughput:.0f}/s",
                        file=sys.stderr,
                    )
        finally:
            for server in servers.values():
                server.stop()
    print("workers | req/s | p99 ms | CPU ms per callback")
    for n in (1, 2):
        f = figures[n]
        print(
            f"{n:7d} | {median(f['rps']):5.0f} | {fmt_ms(median(f['p99']))} | "
            f"{median(f['cpu']) * 1000:.2f}"
        )
    one, two = figures[1], figures[2]
    print(
        f"2 workers / 1: req/s {median(two['rps']) / median(one['rps']):.2f}, "
        f"p99 {median(two['p99']) / median(one['p99']):.2f}, "
        f"CPU per callback {median(two['cpu']) / median(one['cpu']):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
