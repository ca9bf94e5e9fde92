"""The SQLite store's CPU per callback under gevent, group commit against one transaction per
write, side by side: ``python -m bench.store_group_commit``.

A callback-equivalent is what app/jobs/deadline.py asks of the store for a callback answered in
time: ``claim_job`` (a new key, a JSON payload of a typical size), the handler's turn (one
``gevent.sleep(0)``, so other greenlets run in between, as they do while a handler thread runs),
then ``update_job`` to PASSIVE with the reply, compared on state and owner. ``GREENLETS``
greenlets do ``PER_GREENLET`` of them each, in one gevent-patched process, on a file in a
temporary directory. Each round measures both modes, the order alternating, each on its own
file; the figures are the medians over the rounds of the process CPU time (user + system) and
wall time per callback, and for group commit the mean writes per transaction.

Settings (environment): BENCH_GC_GREENLETS (64), BENCH_GC_CALLBACKS (per greenlet, 40),
BENCH_GC_ROUNDS (7). A second run does the same number of callbacks in one greenlet: a lone
writer, whom group commit can only cost. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.infra.store import SqliteStore

MODES = {"one transaction per write": False, "group commit": True}
PAYLOAD = json.dumps(
    {
        "endpoint": "app",
        "message": {
            "ToUserName": "ww0123456789abcdef",
            "FromUserName": "zhangsan",
            "CreateTime": "1700000000",
            "MsgType": "text",
            "Content": "hello " * 20,
            "MsgId": "7300000000000000000",
            "AgentID": "1000002",
        },
    }
)
REPLY = json.dumps({"xml": "<xml><Content><![CDATA[" + "hello " * 20 + "]]></Content></xml>"})


def run_round(
    store: SqliteStore, greenlets: int, per_greenlet: int, tag: str
) -> tuple[float, float]:
    """CPU and wall seconds of ``greenlets`` × ``per_greenlet`` callback-equivalents."""
    import gevent

    from app.infra.store import JobState

    def callbacks(worker: int) -> None:
        owner = f"bench-{worker}"
        for n in range(per_greenlet):
            key = f"{tag}-{worker}-{n}"
            now = time.time()
            created, _ = store.claim_job(key, "app", PAYLOAD, owner, now + 60, now)
            assert created, key
            gevent.sleep(0)  # the handler's turn
            moved = store.update_job(
                key,
                expect_states=(JobState.RUNNING,),
                expect_owner=owner,
                state=JobState.PASSIVE,
                reply=REPLY,
                now=time.time(),
            )
            assert moved, key

    cpu, wall = time.process_time(), time.perf_counter()
    gevent.joinall(
        [gevent.spawn(callbacks, w) for w in range(greenlets)], timeout=120, raise_error=True
    )
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(greenlets: int, per_greenlet: int, rounds: int, directory: Path) -> None:
    from app.infra.store import SqliteStore

    stores = {
        name: SqliteStore(directory / f"{greenlets}-{n}.db", group_commit=grouped)
        for n, (name, grouped) in enumerate(MODES.items())
    }
    count = greenlets * per_greenlet
    cpu: dict[str, list[float]] = {name: [] for name in MODES}
    wall: dict[str, list[float]] = {name: [] for name in MODES}
    try:
        for store in stores.values():  # warm-up: connection, schema, statement cache
            run_round(store, greenlets, 2, "warm")
        for r in range(rounds):
            order = list(stores) if r % 2 == 0 else list(reversed(stores))
            for name in order:
                used, took = run_round(stores[name], greenlets, per_greenlet, f"r{r}")
                cpu[name].append(used / count * 1e6)
                wall[name].append(took / count * 1e6)
            print(f"  {greenlets} greenlets: round {r + 1}/{rounds}", file=sys.stderr)
        print(f"\n{greenlets} concurrent greenlets, {count} callbacks per round, {rounds} rounds")
        print(f"  {'mode':28} {'CPU µs/callback':>16} {'wall µs/callback':>17} {'writes/txn':>11}")
        for name, store in stores.items():
            group = store._group
            per_txn = f"{group.writes / group.batches:.1f}" if group and group.batches else "1"
            print(
                f"  {name:28} {statistics.median(cpu[name]):16.0f} "
                f"{statistics.median(wall[name]):17.0f} {per_txn:>11}"
            )
        before = statistics.median(cpu["one transaction per write"])
        after = statistics.median(cpu["group commit"])
        print(f"  group commit saves {before - after:.0f} µs of CPU per callback")
    finally:
        for store in stores.values():
            store.close()


def main() -> None:
    from gevent import monkey

    monkey.patch_all()  # as in a gevent worker: the store batches only where gevent runs
    greenlets = int(os.environ.get("BENCH_GC_GREENLETS", "64"))
    per_greenlet = int(os.environ.get("BENCH_GC_CALLBACKS", "40"))
    rounds = int(os.environ.get("BENCH_GC_ROUNDS", "7"))
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as directory:
        for concurrency in sorted({1, greenlets}):  # the same callbacks in all, 1 greenlet too
            measure(concurrency, greenlets * per_greenlet // concurrency, rounds, Path(directory))


if __name__ == "__main__":
    main()
