"""Scenario A, "plain callbacks": how fast one worker answers signed, encrypted text callbacks.

Three servers, each ONE gunicorn worker, all started at once and measured in turn in the same
run (the order rotates every round so that drift does not favour one of them):

* the service with ``GUNICORN_WORKER_CLASS=gevent`` (gunicorn's own HTTP parser on gevent),
* the service with ``GUNICORN_WORKER_CLASS=gevent_pywsgi`` (gevent's pywsgi server; the default),
* bench/baseline_wechatpy.py (Flask + wechatpy, no store) under ``gunicorn -k gevent``, and
  under ``-k gevent_pywsgi`` too, to tell the worker class's share of a difference from the app's.

The demo bot answers every text with a passive reply (the text echoed, encrypted). The service
records each message in its SQLite store (WECOM_STORE in a temporary directory). Load: wrk with
64 keep-alive connections replaying a pool of distinct callbacks; the figures of each server are
medians over the rounds. Then a short pass with the Python generator counts the answers each
connection got (min / median / max) to show whether some connections starve.

    .venv/bin/python -m bench.plain_callbacks

Settings (environment): BENCH_SECONDS (per server, default 21), BENCH_ROUNDS (3),
BENCH_CONNECTIONS (64), BENCH_FAIRNESS_SECONDS (4; 0 skips), BENCH_LOADGEN (``wrk`` or
``python``; default wrk when installed), BENCH_BASELINE_CLASSES (``gevent,gevent_pywsgi``).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.devtools.simulator import SimulationError, Simulator

from .common import (
    AES_KEY,
    CORP_ID,
    HOST,
    TOKEN,
    Server,
    baseline_server,
    env_float,
    env_int,
    fmt_ms,
    fmt_ratio,
    job_states,
    median,
    service_server,
)
from .loadgen import run_load
from .pool import CallbackFactory, write_wrk_pool
from .wrkrun import run_wrk, wrk_path

WARMUP_SECONDS = 2.0
WARMUP_POOL = 8000
POOL_HEADROOM = 1.8  # pool size = measured rate x seconds x headroom
MIN_POOL = 3000


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Round:
    answers: int
    replies: int  # 200 with a passive reply
    empty: int  # 200 with an empty body
    non_200: int
    socket_errors: int
    sent: int
    p50: float
    p99: float
    max: float
    throughput: float
    duration: float
    exhausted: bool


@dataclass
class Target:
    key: str  # "gevent", "gevent_pywsgi", "wechatpy"
    label: str
    server: Server
    store: Path | None
    sanity: str = ""
    warmup: Round | None = None
    rounds: list[Round] = field(default_factory=list)
    fairness: dict[str, float] | None = None
    jobs: dict[str, int] = field(default_factory=dict)
    sent_total: int = 0
    trouble: list[str] = field(default_factory=list)

    def med(self, name: str) -> float:
        return median(getattr(r, name) for r in self.rounds)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rounds)

    @property
    def worst(self) -> float:
        return max((r.max for r in self.rounds), default=math.nan)


def _sanity(target: Target) -> str:
    """One callback through the Simulator: the passive reply must decrypt and verify."""
    simulator = Simulator(target.server.url + "/", TOKEN, AES_KEY, CORP_ID)
    try:
        result = simulator.send_text("你好")
    except (SimulationError, OSError) as exc:
        return f"FAILED: {exc}"
    if result.status != 200 or result.reply is None:
        return f"FAILED: status {result.status}, body {result.body[:120]!r}"
    return f"ok, reply {result.reply.get('Content')!r} in {result.elapsed * 1000:.0f} ms"


def _measure(
    target: Target,
    factory: CallbackFactory,
    *,
    count: int,
    seconds: float,
    connections: int,
    tag: str,
    use_wrk: bool,
    workdir: Path,
) -> Round:
    callbacks = factory.texts(count, tag=tag)
    if use_wrk:
        pool_file = workdir / f"pool-{target.key}-{tag}.txt"
        write_wrk_pool(pool_file, callbacks)
        result = run_wrk(
            target.server.url + "/", pool_file, connections=connections, seconds=seconds
        )
        pool_file.unlink()
        return Round(
            answers=result.answers,
            replies=result.replies,
            empty=result.empty,
            non_200=result.non_200,
            socket_errors=result.socket_errors,
            sent=result.sent,
            p50=result.p50,
            p99=result.p99,
            max=result.max,
            throughput=result.throughput,
            duration=result.duration,
            exhausted=result.exhausted,
        )
    host = f"{HOST}:{target.server.port}"
    pool = [c.raw_http(host) for c in callbacks]
    load = run_load(HOST, target.server.port, pool, connections=connections, duration=seconds)
    figures = load.summary()
    return Round(
        answers=len(load.samples),
        replies=int(figures["status_200"] - figures["empty_200"]),
        empty=int(figures["empty_200"]),
        non_200=len(load.samples) - int(figures["status_200"]),
        socket_errors=int(figures["errors"]),
        sent=len(pool) - load.unsent,
        p50=figures["p50"],
        p99=figures["p99"],
        max=figures["max"],
        throughput=figures["throughput"],
        duration=load.duration,
        exhausted=load.pool_exhausted,
    )


def _fairness(target: Target, factory: CallbackFactory, seconds: float, connections: int) -> None:
    rate = target.med("throughput") if target.rounds else 1000.0
    count = max(int(rate * seconds * POOL_HEADROOM), MIN_POOL)
    host = f"{HOST}:{target.server.port}"
    pool = [c.raw_http(host) for c in factory.texts(count, tag="fair")]
    load = run_load(HOST, target.server.port, pool, connections=connections, duration=seconds)
    figures = load.summary()
    figures["sent"] = len(pool) - load.unsent
    figures["exhausted"] = float(load.pool_exhausted)
    target.fairness = figures


def run_plain(
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    connections: int | None = None,
    fairness_seconds: float | None = None,
    loadgen: str | None = None,
    baseline_classes: list[str] | None = None,
) -> list[Target]:
    seconds = seconds if seconds is not None else env_float("BENCH_SECONDS", 21.0)
    rounds = rounds if rounds is not None else max(env_int("BENCH_ROUNDS", 3), 1)
    connections = connections if connections is not None else env_int("BENCH_CONNECTIONS", 64)
    if fairness_seconds is None:
        fairness_seconds = env_float("BENCH_FAIRNESS_SECONDS", 4.0)
    if loadgen is None:
        loadgen = os.environ.get("BENCH_LOADGEN") or ("wrk" if wrk_path() else "python")
    if baseline_classes is None:
        raw = os.environ.get("BENCH_BASELINE_CLASSES") or "gevent,gevent_pywsgi"
        baseline_classes = [name.strip() for name in raw.split(",") if name.strip()]
    use_wrk = loadgen == "wrk"
    if use_wrk and not wrk_path():
        raise RuntimeError("BENCH_LOADGEN=wrk but wrk is not installed (apt-get install -y wrk)")
    round_seconds = seconds / rounds
    log(
        f"scenario A: {rounds} rounds x {round_seconds:.0f} s per server, {connections} "
        f"connections, load generator {loadgen}"
    )
    factory = CallbackFactory()
    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as tmp:
        workdir = Path(tmp)
        targets = [
            Target(
                "gevent",
                "service, gevent",
                service_server("service-gevent", "gevent", workdir / "gevent.db"),
                workdir / "gevent.db",
            ),
            Target(
                "gevent_pywsgi",
                "service, gevent_pywsgi",
                service_server("service-pywsgi", "gevent_pywsgi", workdir / "pywsgi.db"),
                workdir / "pywsgi.db",
            ),
        ]
        for worker_class in baseline_classes:
            key = "wechatpy" if worker_class == "gevent" else f"wechatpy_{worker_class}"
            targets.append(
                Target(
                    key,
                    f"wechatpy baseline, {worker_class}",
                    baseline_server(f"wechatpy-{worker_class}", worker_class),
                    None,
                )
            )
        try:
            for target in targets:
                target.server.start()
                target.sanity = _sanity(target)
                log(f"{target.label}: started on port {target.server.port}; {target.sanity}")
            for target in targets:
                target.warmup = _measure(
                    target,
                    factory,
                    count=WARMUP_POOL,
                    seconds=WARMUP_SECONDS,
                    connections=connections,
                    tag="warm",
                    use_wrk=use_wrk,
                    workdir=workdir,
                )
                log(f"{target.label}: warm-up {target.warmup.throughput:.0f} req/s")
            for index in range(rounds):
                order = targets[index % len(targets) :] + targets[: index % len(targets)]
                for target in order:
                    assert target.warmup is not None
                    rate = max([target.warmup.throughput] + [r.throughput for r in target.rounds])
                    count = max(int(rate * round_seconds * POOL_HEADROOM), MIN_POOL)
                    measured = _measure(
                        target,
                        factory,
                        count=count,
                        seconds=round_seconds,
                        connections=connections,
                        tag=f"r{index}-",
                        use_wrk=use_wrk,
                        workdir=workdir,
                    )
                    target.rounds.append(measured)
                    log(
                        f"round {index + 1}/{rounds} {target.label}: "
                        f"{measured.throughput:.0f} req/s, p50 {fmt_ms(measured.p50)} ms, "
                        f"p99 {fmt_ms(measured.p99)} ms, max {fmt_ms(measured.max)} ms"
                        + (" (POOL EXHAUSTED)" if measured.exhausted else "")
                    )
            if fairness_seconds > 0:
                for target in targets:
                    _fairness(target, factory, fairness_seconds, connections)
                    assert target.fairness is not None
                    log(
                        f"{target.label}: answers per connection min/median/max "
                        f"{target.fairness['conn_min']:.0f}/{target.fairness['conn_median']:.0f}/"
                        f"{target.fairness['conn_max']:.0f}"
                    )
        except BaseException:
            for target in targets:
                log(f"{target.label} log tail:\n{target.server.output()[-2500:]}")
            raise
        finally:
            for target in targets:
                target.server.stop()
                target.trouble = target.server.trouble()
                target.server.close()
        for target in targets:
            phases = [target.warmup, *target.rounds]
            target.sent_total = 1 + sum(r.sent for r in phases if r is not None)
            if target.fairness is not None:
                target.sent_total += int(target.fairness["sent"])
            if target.store is not None:
                target.jobs = job_states(target.store)
    return targets


def table(targets: list[Target]) -> list[dict[str, str]]:
    """Scenario A rows for the combined table (see bench/run.py for the header)."""
    rows = []
    for target in targets:
        notes = []
        if any(r.exhausted for r in target.rounds):
            notes.append("POOL EXHAUSTED: req/s understated")
        if not target.sanity.startswith("ok"):
            notes.append(f"sanity {target.sanity}")
        rows.append(
            {
                "scenario": "A plain",
                "server": target.label,
                "answers": str(target.total("answers")),
                "req/s": f"{target.med('throughput'):.0f}",
                "p50 ms": fmt_ms(target.med("p50")),
                "p99 ms": fmt_ms(target.med("p99")),
                "max ms": fmt_ms(target.worst),
                "<=5 s": "-",
                "errors": str(target.total("non_200") + target.total("socket_errors")),
                "notes": "; ".join(notes),
            }
        )
    return rows


def details(targets: list[Target]) -> list[str]:
    lines = []
    for target in targets:
        rounds = ", ".join(
            f"{r.throughput:.0f}/s p99 {fmt_ms(r.p99)} max {fmt_ms(r.max)}" for r in target.rounds
        )
        lines.append(f"  {target.label}: rounds [{rounds}]")
        lines.append(
            f"    replies {target.total('replies')}, empty {target.total('empty')}, "
            f"non-200 {target.total('non_200')}, socket errors/timeouts "
            f"{target.total('socket_errors')}; sanity: {target.sanity}"
        )
        if target.fairness:
            f = target.fairness
            lines.append(
                f"    fairness pass (Python generator, {f['answers']:.0f} answers, "
                f"{f['throughput']:.0f}/s): answers per connection min/median/max "
                f"{f['conn_min']:.0f}/{f['conn_median']:.0f}/{f['conn_max']:.0f}, "
                f"p99 {fmt_ms(f['p99'])} ms, max {fmt_ms(f['max'])} ms, errors {f['errors']:.0f}"
            )
        if target.store is not None:
            recorded = sum(target.jobs.values())
            lines.append(
                f"    store: {recorded} jobs {target.jobs} for {target.sent_total} callbacks sent"
            )
        if target.trouble:
            lines.append(f"    server log: {len(target.trouble)} error lines, first:")
            lines.extend(f"      {line[:160]}" for line in target.trouble[:3])
    return lines


def ratios(targets: list[Target]) -> list[str]:
    by_key = {t.key: t for t in targets}
    lines = []

    def add(label: str, numerator: float, denominator: float) -> None:
        lines.append(f"  {label:<46} = {fmt_ratio(numerator, denominator)}")

    gevent, pywsgi = by_key.get("gevent"), by_key.get("gevent_pywsgi")
    base, base_pywsgi = by_key.get("wechatpy"), by_key.get("wechatpy_gevent_pywsgi")
    if gevent and pywsgi:
        add("A p99   service gevent / gevent_pywsgi", gevent.med("p99"), pywsgi.med("p99"))
        add("A p50   service gevent / gevent_pywsgi", gevent.med("p50"), pywsgi.med("p50"))
        add("A max   service gevent / gevent_pywsgi", gevent.worst, pywsgi.worst)
        add(
            "A req/s service gevent / gevent_pywsgi",
            gevent.med("throughput"),
            pywsgi.med("throughput"),
        )
    if pywsgi and base:
        add(
            "A req/s service gevent_pywsgi / wechatpy",
            pywsgi.med("throughput"),
            base.med("throughput"),
        )
        add("A p99   service gevent_pywsgi / wechatpy", pywsgi.med("p99"), base.med("p99"))
    if base and base_pywsgi:
        add("A p99   wechatpy gevent / gevent_pywsgi", base.med("p99"), base_pywsgi.med("p99"))
        add(
            "A req/s wechatpy gevent / gevent_pywsgi",
            base.med("throughput"),
            base_pywsgi.med("throughput"),
        )
    return lines


def main() -> int:
    from .run import print_scenario

    started = time.monotonic()
    targets = run_plain()
    sections = [
        ("Scenario A details:", details(targets)),
        ("Ratios (medians over rounds; max = worst round):", ratios(targets)),
    ]
    print_scenario("scenario A", table(targets), sections, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
