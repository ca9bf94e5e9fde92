"""Redis against SQLite, one instance and two, side by side: ``python -m bench.store_backends``.

Three set-ups of the service (``gunicorn -c gunicorn.conf.py wsgi:app``, its default worker
class, 2 workers per instance), started together and measured in turn, the order rotating every
round so that drift favours none:

* ``sqlite, 1 instance``: ``WECOM_STORE=sqlite:///…`` (a file in a temporary directory);
* ``redis, 1 instance``: ``WECOM_STORE=redis://…`` on a redis-server started here (127.0.0.1,
  a password, ``appendonly yes`` + ``appendfsync everysec``, as the README advises);
* ``redis, 2 instances``: two instances on that redis-server (their own key prefix), the load
  generator's connections split between them (round-robin by connection, no proxy).

Load: the Python generator (bench/loadgen.py) replays signed, encrypted text callbacks, each
with its own MsgId, over ``BENCH_CONNECTIONS`` keep-alive connections; the demo bot answers each
with a passive reply, so every callback is a dedup record written twice (claim, then reply).
Every loop is bounded by the pool size and by time. Each round also reads the CPU time the
service, redis-server and the generator used per callback, how busy the rest of the machine was
(other work on the box lowers every figure; "other cores" says when that happened), and the
Redis commands per callback (INFO stats; the commands run inside the store's Lua scripts count).
``best req/s`` is the best round's (the one least disturbed by other work on the box);
``cb/CPU-s`` is callbacks per CPU second of service plus redis-server: what one core would
serve, a figure that other work on the machine disturbs much less than req/s.

Settings (environment): BENCH_STORE_SECONDS (per set-up, split into rounds; default 15),
BENCH_STORE_ROUNDS (6), BENCH_CONNECTIONS (64). Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gevent

from app.devtools.simulator import SimulationError, Simulator

from .common import (
    AES_KEY,
    CORP_ID,
    HOST,
    TOKEN,
    Server,
    env_float,
    env_int,
    fmt_ms,
    fmt_ratio,
    job_states,
    median,
    percentile,
    service_server,
)
from .loadgen import run_load
from .pool import CallbackFactory
from .procstat import CpuSample
from .redis_server import RedisProcess

WORKER_CLASS = "app.web.gunicorn_worker.GracefulGeventWorker"  # gunicorn.conf.py's default
WORKERS = 2
WARMUP_SECONDS = 1.5
POOL_HEADROOM = 3.0  # pool = best rate so far x seconds x headroom (the rate varies when the
MIN_POOL, MAX_POOL = 4_000, 40_000  # machine is shared), within these bounds
JOB_STATES = ("running", "passive", "deferred", "outbox", "done", "dead")


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Round:
    answers: int
    replies: int  # 200 with a passive reply
    failures: int  # non-200 answers, socket errors and timeouts
    sent: int
    p50: float
    p99: float
    max: float
    throughput: float
    exhausted: bool
    per_instance: list[int]
    service_ms: float  # CPU per callback answered
    redis_ms: float
    generator_ms: float
    other_cores: float  # the rest of the machine's CPU use, in cores, during the round
    redis_commands: float  # Redis commands per callback, those run by Lua scripts included


@dataclass
class Setup:
    key: str
    label: str
    servers: list[Server]
    prefix: str | None = None  # Redis key prefix; None: SQLite
    store: Path | None = None
    sanity: str = ""
    rate: float = 0.0  # best rate seen, sizes the next pool
    sent: int = 0  # callbacks sent in all, sanity and warm-up included
    rounds: list[Round] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    trouble: list[str] = field(default_factory=list)

    def med(self, name: str) -> float:
        return median(getattr(r, name) for r in self.rounds)

    def best(self, name: str) -> float:
        return max((getattr(r, name) for r in self.rounds), default=math.nan)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rounds)


def sanity(setup: Setup) -> str:
    """One callback to each instance through the Simulator: the reply must decrypt and verify."""
    for server in setup.servers:
        try:
            result = Simulator(server.url + "/", TOKEN, AES_KEY, CORP_ID).send_text("你好")
        except (SimulationError, OSError) as exc:
            return f"FAILED: {exc}"
        if result.status != 200 or result.reply is None:
            return f"FAILED: status {result.status}"
    return "ok"


def measure(
    setup: Setup, factory: CallbackFactory, redis: RedisProcess, *, count: int, seconds: float,
    connections: int, tag: str,
) -> Round:  # fmt: skip
    """One bounded run; the pool and the connections split evenly over the instances."""
    n = len(setup.servers)
    pools = [
        [c.raw_http(f"{HOST}:{s.port}") for c in factory.texts(count // n, tag=f"{tag}{i}-")]
        for i, s in enumerate(setup.servers)
    ]
    service_pids = [s.process.pid for s in setup.servers if s.process is not None]
    before = CpuSample.take(service_pids, redis.process.pid)
    commands_before = redis.commands_processed()
    runs = [
        gevent.spawn(run_load, HOST, s.port, pool, connections=connections // n, duration=seconds)
        for s, pool in zip(setup.servers, pools, strict=True)
    ]
    gevent.joinall(runs, raise_error=True)
    after = CpuSample.take(service_pids, redis.process.pid)
    commands = redis.commands_processed() - commands_before - 1  # minus our own INFO
    results = [run.value for run in runs]
    samples = [s for r in results for s in r.samples]
    latencies = [s.latency for s in samples]
    duration = max(r.duration for r in results)
    per_answer = 1000 / max(len(samples), 1)  # CPU seconds -> ms per callback
    on_redis = setup.prefix is not None  # else redis-server only served the idle set-ups
    ours = sum(getattr(after, k) - getattr(before, k) for k in ("service", "redis", "generator"))
    return Round(
        answers=len(samples),
        replies=sum(1 for s in samples if s.status == 200 and s.body_len > 0),
        failures=sum(1 for s in samples if s.status != 200)
        + sum(sum(r.errors.values()) for r in results),
        sent=sum(len(pool) - r.unsent for pool, r in zip(pools, results, strict=True)),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        max=max(latencies, default=math.nan),
        throughput=len(samples) / duration,
        exhausted=any(r.pool_exhausted for r in results),
        per_instance=[len(r.samples) for r in results],
        service_ms=(after.service - before.service) * per_answer,
        redis_ms=(after.redis - before.redis) * per_answer if on_redis else 0.0,
        generator_ms=(after.generator - before.generator) * per_answer,
        other_cores=max(after.machine - before.machine - ours, 0.0) / duration,
        redis_commands=commands / max(len(samples), 1) if on_redis else 0.0,
    )


def redis_job_states(redis: RedisProcess, prefix: str) -> dict[str, int]:
    """Jobs by state, from the store's per-state indexes (app/infra/store/redis.py's layout)."""
    with redis.client() as client:
        counts = {s: client.zcard(f"{prefix}{{jobs}}:state:{s}") for s in JOB_STATES}
    return {state: count for state, count in counts.items() if count}


def build_setups(workdir: Path, redis: RedisProcess) -> list[Setup]:
    def instance(name: str, prefix: str | None) -> Server:
        extra = {} if prefix is None else {"WECOM_STORE": redis.url, "WECOM_REDIS_PREFIX": prefix}
        db = workdir / f"{name}.db"  # the store of the SQLite set-up; unused with Redis
        return service_server(name, WORKER_CLASS, db, workers=WORKERS, extra_env=extra)

    pair = [instance(f"redis2{x}", "b2:") for x in "ab"]
    sqlite = workdir / "sqlite1.db"
    return [
        Setup("sqlite1", "sqlite, 1 instance", [instance("sqlite1", None)], None, sqlite),
        Setup("redis1", "redis, 1 instance", [instance("redis1", "b1:")], "b1:"),
        Setup("redis2", "redis, 2 instances", pair, "b2:"),
    ]  # fmt: skip


def run_rounds(setups: list[Setup], redis: RedisProcess) -> None:
    seconds = env_float("BENCH_STORE_SECONDS", 15.0)
    rounds = max(env_int("BENCH_STORE_ROUNDS", 6), 1)
    connections = max(env_int("BENCH_CONNECTIONS", 64), 2)
    factory = CallbackFactory()
    for setup in setups:
        setup.sanity = sanity(setup)
        log(f"{setup.label}: ports {[s.port for s in setup.servers]}, sanity {setup.sanity}")
        warm = measure(setup, factory, redis, count=MIN_POOL * 2, seconds=WARMUP_SECONDS,
                       connections=connections, tag="w")  # fmt: skip
        setup.rate, setup.sent = warm.throughput, len(setup.servers) + warm.sent
        log(f"{setup.label}: warm-up {warm.throughput:.0f} req/s")
    for index in range(rounds):
        shift = index % len(setups)
        for setup in setups[shift:] + setups[:shift]:
            count = int(setup.rate * seconds / rounds * POOL_HEADROOM)
            count = min(max(count, MIN_POOL), MAX_POOL)
            measured = measure(setup, factory, redis, count=count, seconds=seconds / rounds,
                               connections=connections, tag=f"r{index}")  # fmt: skip
            setup.rounds.append(measured)
            setup.rate = max(setup.rate, measured.throughput)
            setup.sent += measured.sent
            log(
                f"round {index + 1}/{rounds} {setup.label}: {measured.throughput:.0f} req/s, "
                f"p50 {fmt_ms(measured.p50)} ms, p99 {fmt_ms(measured.p99)} ms, "
                f"per instance {measured.per_instance}, other load "
                f"{measured.other_cores:.2f} cores"
            )


def run_store_backends() -> list[Setup]:
    """Start redis-server and the three set-ups, measure, stop everything started here."""
    with tempfile.TemporaryDirectory(prefix="wecom-bench-stores-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir)
        setups: list[Setup] = []
        try:
            redis.wait_ready()
            setups = build_setups(workdir, redis)
            for setup in setups:
                for server in setup.servers:
                    server.start()
            run_rounds(setups, redis)
        finally:
            for setup in setups:
                for server in setup.servers:
                    server.stop()
                    setup.trouble += server.trouble()
                    server.close()
                if setup.store is not None:
                    setup.jobs = job_states(setup.store)
                elif setup.prefix is not None and redis.process.poll() is None:
                    setup.jobs = redis_job_states(redis, setup.prefix)
            redis.stop()
    return setups


COLUMNS = ("set-up", "answers", "req/s", "best req/s", "p50 ms", "p99 ms", "max ms", "failures",
           "CPU ms/cb: service", "redis", "generator", "cb/CPU-s", "other cores",
           "redis cmds/cb")  # fmt: skip


def row(s: Setup) -> tuple[str, ...]:
    worst = max((r.max for r in s.rounds), default=math.nan)
    redis = f"{s.med('redis_ms'):.2f}" if s.prefix is not None else "-"
    redis_cmds = f"{s.med('redis_commands'):.1f}" if s.prefix is not None else "-"
    return (
        s.label, str(s.total("answers")), f"{s.med('throughput'):.0f}",
        f"{s.best('throughput'):.0f}", fmt_ms(s.med("p50")),
        fmt_ms(s.med("p99")), fmt_ms(worst), str(s.total("failures")),
        f"{s.med('service_ms'):.2f}", redis, f"{s.med('generator_ms'):.2f}",
        f"{1000 / (s.med('service_ms') + s.med('redis_ms')):.0f}",
        f"{s.med('other_cores'):.2f}", redis_cmds,
    )  # fmt: skip


def report(setups: list[Setup]) -> list[str]:
    """The table (medians over the rounds; best: the best round, max: the worst), the ratios
    and the details."""
    rows = [COLUMNS] + [row(s) for s in setups]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    lines = [line(COLUMNS), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows[1:]]
    by = {s.key: s for s in setups}
    lines.append("\nRatios (medians over the rounds):")
    for label, top, bottom in (
        ("redis 1 / sqlite 1", "redis1", "sqlite1"),
        ("redis 2 / redis 1", "redis2", "redis1"),
        ("redis 2 / sqlite 1", "redis2", "sqlite1"),
    ):
        figures = ", ".join(
            f"{name} {fmt_ratio(by[top].med(attr), by[bottom].med(attr))}"
            for name, attr in (("req/s", "throughput"), ("p50", "p50"), ("p99", "p99"))
        )
        cpu = [by[key].med("service_ms") + by[key].med("redis_ms") for key in (top, bottom)]
        figures += (
            f", best req/s {fmt_ratio(by[top].best('throughput'), by[bottom].best('throughput'))}"
        )
        figures += f", CPU per callback (service + redis) {fmt_ratio(*cpu)}"
        lines.append(f"  {label:<20} {figures}")
    lines.append("\nDetails:")
    for s in setups:
        rounds = ", ".join(
            f"{r.throughput:.0f}/s p99 {fmt_ms(r.p99)} other {r.other_cores:.1f}" for r in s.rounds
        )
        split = [sum(r.per_instance[i] for r in s.rounds) for i in range(len(s.servers))]
        exhausted = any(r.exhausted for r in s.rounds)
        lines.append(f"  {s.label}: rounds [{rounds}]; sanity {s.sanity}")
        lines.append(
            f"    passive replies {s.total('replies')} of {s.total('answers')} answers; per "
            f"instance {split}; jobs in the store by state {s.jobs} for {s.sent} callbacks "
            "sent (sanity and warm-up included)"
            + ("; POOL EXHAUSTED: req/s understated" if exhausted else "")
        )
        if s.trouble:
            lines.append(f"    server log: {len(s.trouble)} error lines, first: {s.trouble[0]}")
    return lines


def main() -> int:
    started = time.monotonic()
    setups = run_store_backends()
    connections = max(env_int("BENCH_CONNECTIONS", 64), 2)
    print(
        f"Store back-ends, {time.strftime('%Y-%m-%d %H:%M:%S')}: {os.cpu_count()} CPUs, "
        f"{WORKERS} workers per instance, Python load generator, {connections} connections"
    )
    print("\n".join(report(setups)))
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
