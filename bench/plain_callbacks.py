"""Scenario A, "plain callbacks": the service and two references, side by side, on one request set.

Every server is ONE worker process pinned to CPU 0 (``taskset``); the load generator, wrk with
one thread and 64 keep-alive connections, is pinned to CPU 1. The servers are all started first
and then measured in turn, in a rotating order, round after round; in each round every server gets
the same pool of signed, encrypted text callbacks, each with its own MsgId (each server keeps its
own store, so none of them is a retry).

* ``service``: this service as deployed, ``gunicorn -c gunicorn.conf.py wsgi:app`` with the
  file's defaults (worker class, access log ...), a user handler module
  (``WECOM_HANDLERS=bench.echo_handlers``: a text is answered with itself) and the SQLite store.
* ``service, gevent``: the same with ``GUNICORN_WORKER_CLASS=gevent``, to choose the worker class.
* ``wechatpy``: bench/baseline_wechatpy.py, Flask + wechatpy under ``gunicorn -k gevent_pywsgi``:
  what a user of this stack writes (no dedup, no durability, no deadline).
* ``fastapi``: bench/reference_fastapi.py, FastAPI (async) + the official ``WXBizMsgCrypt`` API,
  under uvicorn with its defaults.

Variants of the service run as more servers in the same run, so that their effect is measured
against the same references on the same requests: ``BENCH_VARIANTS`` holds entries separated by
``;``, each a label and then ``NAME=value`` settings for that server's environment, where the
name ``tree`` gives another source tree (e.g. a prototype exported with ``git archive``)::

    BENCH_VARIANTS="no-access-log GUNICORN_ACCESSLOG=; proto tree=/tmp/proto"

Per server: answers per second, p50/p99/max latency (medians over the rounds; max of the worst),
server CPU per callback (user + system time of the server's processes, from /proc, over the
answers), and the correctness sampler (bench/sampler.py: every 50th passive reply decrypted and
checked). A last pass with the Python generator counts the answers each connection got.

    .venv/bin/python -m bench.plain_callbacks

Settings (environment): BENCH_SECONDS (per server, default 16), BENCH_ROUNDS (8: rounds of 2 s,
so that no callback is sent more than a few seconds after its CreateTime, as with WeCom),
BENCH_CONNECTIONS (64), BENCH_FAIRNESS_SECONDS (4; 0 skips), BENCH_SERVERS (which of
``service,service_gevent,wechatpy,fastapi``; default all), BENCH_VARIANTS (above),
BENCH_SERVICE_ENV (``NAME=value,...`` added to every service server's environment).
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
    SERVER_CPU,
    TOKEN,
    Server,
    baseline_server,
    cpu_busy_seconds,
    env_float,
    env_int,
    fastapi_server,
    fmt_ms,
    fmt_ratio,
    job_states,
    median,
    rss_bytes,
    service_server,
)
from .loadgen import run_load
from .pool import Callback, CallbackFactory, write_wrk_pool
from .sampler import SampleCheck, check_files
from .wrkrun import run_wrk, wrk_path

WARMUP_SECONDS = 2.0
WARMUP_POOL = 6000
POOL_HEADROOM = 1.8  # pool size = fastest rate so far x seconds x headroom
MIN_POOL = 3000
SAMPLE_EVERY = 50
ALL_SERVERS = ("service", "service_gevent", "wechatpy", "fastapi")
USER_HANDLERS = "bench.echo_handlers"


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Round:
    answers: int
    replies: int  # 200 with a passive reply
    empty: int
    non_200: int
    socket_errors: int
    sent: int
    p50: float
    p99: float
    max: float
    throughput: float
    cpu_per_answer: float  # seconds of server CPU per answer
    foreign: float  # share of CPU 0's time busy with processes other than the server (noise)
    exhausted: bool
    sampled: SampleCheck


@dataclass
class Target:
    key: str
    label: str
    server: Server
    store: Path | None
    sanity: str = ""
    rounds: list[Round] = field(default_factory=list)
    fairness: dict[str, float] | None = None
    jobs: dict[str, int] = field(default_factory=dict)
    sent_total: int = 0
    trouble: list[str] = field(default_factory=list)
    rss: int = 0  # worker's resident memory after the run, bytes
    warmup_sent: int = 0

    def med(self, name: str) -> float:
        return median(getattr(r, name) for r in self.rounds)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rounds)

    @property
    def worst(self) -> float:
        return max((r.max for r in self.rounds), default=math.nan)

    @property
    def sampled(self) -> SampleCheck:
        total = SampleCheck()
        for measured in self.rounds:
            total.add(measured.sampled)
        return total

    @property
    def is_service(self) -> bool:
        return self.store is not None


def _sanity(target: Target) -> str:
    """One callback through the Simulator: the passive reply must decrypt and verify."""
    simulator = Simulator(target.server.url + "/", TOKEN, AES_KEY, CORP_ID)
    try:
        result = simulator.send_text("你好")
    except (SimulationError, OSError) as exc:
        return f"FAILED: {exc}"
    if result.status != 200 or result.reply is None:
        return f"FAILED: status {result.status}, body {result.body[:120]!r}"
    return f"ok, reply {result.reply.get('Content')!r}"


def _measure(
    target: Target,
    pool_file: Path,
    expected: dict[str, str],
    *,
    seconds: float,
    connections: int,
    workdir: Path,
) -> Round:
    sample = workdir / f"sample-{target.key}"
    cpu_before = target.server.cpu_seconds()
    busy_before = cpu_busy_seconds(SERVER_CPU)
    result = run_wrk(
        target.server.url + "/",
        pool_file,
        connections=connections,
        seconds=seconds,
        sample=sample,
        sample_every=SAMPLE_EVERY,
    )
    cpu = target.server.cpu_seconds() - cpu_before
    foreign = cpu_busy_seconds(SERVER_CPU) - busy_before - cpu
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
        cpu_per_answer=cpu / result.answers if result.answers else math.nan,
        foreign=max(foreign, 0.0) / result.duration if result.duration > 0 else math.nan,
        exhausted=result.exhausted,
        sampled=check_files(sample, expected),
    )


def _write_pool(
    workdir: Path, factory: CallbackFactory, callbacks: list[Callback], tag: str
) -> tuple[Path, dict[str, str]]:
    """The request set signed anew right now (fresh CreateTime), in a wrk pool file."""
    pool_file = workdir / f"pool-{tag}.txt"
    write_wrk_pool(pool_file, factory.again(iter(callbacks)))
    return pool_file, {c.content: c.from_user for c in callbacks}


def _fairness(target: Target, factory: CallbackFactory, seconds: float, connections: int) -> None:
    rate = target.med("throughput") if target.rounds else 1000.0
    count = max(int(rate * seconds * POOL_HEADROOM), MIN_POOL)
    host = f"{HOST}:{target.server.port}"
    pool = [c.raw_http(host) for c in factory.texts(count, tag=f"fair-{target.key}-")]
    load = run_load(HOST, target.server.port, pool, connections=connections, duration=seconds)
    figures = load.summary()
    figures["sent"] = len(pool) - load.unsent
    target.fairness = figures


def _parse_pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw.split(","):
        name, sep, value = item.strip().partition("=")
        if sep and name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def parse_variants(raw: str) -> list[tuple[str, dict[str, str]]]:
    """``"label NAME=value ...; label2 ..."`` → [(label, {NAME: value})]."""
    variants = []
    for entry in raw.split(";"):
        words = entry.split()
        if words:
            settings = {name: value for name, _, value in (w.partition("=") for w in words[1:])}
            variants.append((words[0], settings))
    return variants


def _targets(
    workdir: Path, servers: list[str], variants: list[tuple[str, dict[str, str]]]
) -> list[Target]:
    service_env = {"WECOM_HANDLERS": USER_HANDLERS}
    service_env.update(_parse_pairs(os.environ.get("BENCH_SERVICE_ENV", "")))
    targets = []

    def service(key: str, label: str, worker_class: str | None, extra: dict[str, str]) -> None:
        store = workdir / f"{key}.db"
        extra = dict(extra)
        tree = extra.pop("tree", None)
        env = {**service_env, **extra}
        server = service_server(key, worker_class, store, extra_env=env, cpu=SERVER_CPU)
        if tree:
            server.cwd = Path(tree)
        targets.append(Target(key, label, server, store))

    if "service" in servers:
        service("service", "service (gunicorn.conf.py defaults)", None, {})
    for label, settings in variants:
        service(f"variant-{label}", f"service, {label}", None, settings)
    if "service_gevent" in servers:
        service("service_gevent", "service, worker class gevent", "gevent", {})
    if "wechatpy" in servers:
        server = baseline_server("wechatpy", "gevent_pywsgi", cpu=SERVER_CPU)
        targets.append(Target("wechatpy", "Flask + wechatpy, gevent_pywsgi", server, None))
    if "wechatpy_gevent" in servers:  # the peer on the service's HTTP layer (gunicorn's parser)
        server = baseline_server("wechatpy_gevent", "gevent", cpu=SERVER_CPU)
        targets.append(Target("wechatpy_gevent", "Flask + wechatpy, gevent", server, None))
    if "fastapi" in servers:
        server = fastapi_server("fastapi", cpu=SERVER_CPU)
        targets.append(Target("fastapi", "FastAPI + WXBizMsgCrypt, uvicorn", server, None))
    return targets


def run_plain(
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    connections: int | None = None,
    fairness_seconds: float | None = None,
) -> list[Target]:
    seconds = seconds if seconds is not None else env_float("BENCH_SECONDS", 16.0)
    rounds = rounds if rounds is not None else max(env_int("BENCH_ROUNDS", 8), 1)
    connections = connections if connections is not None else env_int("BENCH_CONNECTIONS", 64)
    if fairness_seconds is None:
        fairness_seconds = env_float("BENCH_FAIRNESS_SECONDS", 4.0)
    servers = [s.strip() for s in os.environ.get("BENCH_SERVERS", ",".join(ALL_SERVERS)).split(",")]
    variants = parse_variants(os.environ.get("BENCH_VARIANTS", ""))
    if not wrk_path():
        raise RuntimeError("scenario A needs wrk: apt-get install -y wrk")
    round_seconds = seconds / rounds
    log(
        f"scenario A: {rounds} rounds x {round_seconds:.0f} s per server, {connections} "
        f"connections, wrk -t1 on CPU 1, each server one worker on CPU {SERVER_CPU}"
    )
    factory = CallbackFactory()
    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as tmp:
        workdir = Path(tmp)
        targets = _targets(workdir, servers, variants)
        try:
            for target in targets:
                target.server.start()
                target.sanity = _sanity(target)
                log(f"{target.label}: started on port {target.server.port}; {target.sanity}")
            warm_set = list(factory.texts(WARMUP_POOL, tag="warm-"))
            fastest = 0.0
            for target in targets:
                pool_file, expected = _write_pool(workdir, factory, warm_set, "warm")
                warm = _measure(
                    target,
                    pool_file,
                    expected,
                    seconds=WARMUP_SECONDS,
                    connections=connections,
                    workdir=workdir,
                )
                pool_file.unlink()
                fastest = max(fastest, warm.throughput)
                target.warmup_sent = warm.sent
                log(f"{target.label}: warm-up {warm.throughput:.0f} req/s")
            for index in range(rounds):
                # One request set per round, the same messages for every server, each server's
                # copy signed just before its turn (so CreateTime is seconds old, as WeCom's is).
                count = max(int(fastest * round_seconds * POOL_HEADROOM), MIN_POOL)
                request_set = list(factory.texts(count, tag=f"r{index}-"))
                order = targets[index % len(targets) :] + targets[: index % len(targets)]
                for target in order:
                    pool_file, expected = _write_pool(workdir, factory, request_set, f"r{index}")
                    measured = _measure(
                        target,
                        pool_file,
                        expected,
                        seconds=round_seconds,
                        connections=connections,
                        workdir=workdir,
                    )
                    pool_file.unlink()
                    target.rounds.append(measured)
                    fastest = max(fastest, measured.throughput)
                    log(
                        f"round {index + 1}/{rounds} {target.label}: "
                        f"{measured.throughput:.0f} req/s, p50 {fmt_ms(measured.p50)} ms, "
                        f"p99 {fmt_ms(measured.p99)} ms, CPU "
                        f"{fmt_ms(measured.cpu_per_answer)} ms/callback, CPU 0 busy with others "
                        f"{measured.foreign:.0%}; "
                        f"{measured.sampled.describe()}"
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
            for target in targets:
                target.rss = max((rss_bytes(pid) for pid in target.server.workers), default=0)
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
            # The sanity callback, the warm-up, the rounds and the fairness pass.
            target.sent_total = 1 + target.warmup_sent + sum(r.sent for r in target.rounds)
            if target.fairness is not None:
                target.sent_total += int(target.fairness["sent"])
            if target.store is not None:
                target.jobs = job_states(target.store)
    return targets


TABLE_COLUMNS = (
    "server",
    "req/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "CPU ms/cb",
    "best req/s",
    "least CPU",
    "quiet req/s",
    "quiet CPU",
    "others on CPU 0",
    "sampler",
    "notes",
)


#: A round is "quiet" when other processes kept CPU 0 busy less than this share of the time.
QUIET = 0.10


def _quiet_rounds(target: Target) -> list[Round]:
    return [r for r in target.rounds if r.foreign < QUIET]


def _med(rounds: list[Round], name: str) -> float:
    return median(getattr(r, name) for r in rounds)


def _quiet(target: Target, name: str, scale: float, form: str) -> str:
    """Median of ``name`` over the quiet rounds, with their count: ``"1051 (3)"``; ``-`` if none."""
    values = [getattr(r, name) * scale for r in target.rounds if r.foreign < QUIET]
    return f"{form.format(median(values))} ({len(values)})" if values else "-"


def table_rows(targets: list[Target]) -> list[dict[str, str]]:
    rows = []
    for target in targets:
        notes = []
        if any(r.exhausted for r in target.rounds):
            notes.append("POOL EXHAUSTED: req/s understated")
        if not target.sanity.startswith("ok"):
            notes.append(f"sanity {target.sanity}")
        errors = target.total("non_200") + target.total("socket_errors")
        if errors:
            notes.append(f"{errors} errors")
        if target.total("empty"):
            notes.append(f"{target.total('empty')} empty answers")
        sampled = target.sampled
        rows.append(
            {
                "server": target.label,
                "req/s": f"{target.med('throughput'):.0f}",
                "p50 ms": fmt_ms(target.med("p50")),
                "p99 ms": fmt_ms(target.med("p99")),
                "max ms": fmt_ms(target.worst),
                "CPU ms/cb": f"{target.med('cpu_per_answer') * 1000:.2f}",
                "best req/s": f"{max(r.throughput for r in target.rounds):.0f}",
                "least CPU": f"{min(r.cpu_per_answer for r in target.rounds) * 1000:.2f}",
                "quiet req/s": _quiet(target, "throughput", 1, "{:.0f}"),
                "quiet CPU": _quiet(target, "cpu_per_answer", 1000, "{:.2f}"),
                "others on CPU 0": f"{target.med('foreign'):.0%}",
                "sampler": f"{sampled.correct}/{sampled.checked}",
                "notes": "; ".join(notes),
            }
        )
    return rows


def print_rows(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    widths = {c: max([len(c)] + [len(row.get(c, "")) for row in rows]) for c in columns}
    left = {"server", "notes", "scenario"}

    def cell(column: str, text: str) -> str:
        return text.ljust(widths[column]) if column in left else text.rjust(widths[column])

    print(" | ".join(cell(c, c) for c in columns).rstrip())
    print("-+-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(cell(c, row.get(c, "")) for c in columns).rstrip())


def markdown_table(targets: list[Target]) -> list[str]:
    """The table in Markdown, ratios to both references included (for the README)."""
    by_key = {t.key: t for t in targets}
    refs = [by_key[k] for k in ("wechatpy", "fastapi") if k in by_key]
    head = "| server | req/s | p50 | p99 | CPU per callback |"
    head += "".join(f" req/s vs {r.key} | p99 vs {r.key} | CPU vs {r.key} |" for r in refs)
    lines = [head, "|" + "---|" * (5 + 3 * len(refs))]
    for target in targets:
        line = (
            f"| {target.label} | {target.med('throughput'):.0f} | {fmt_ms(target.med('p50'))} ms "
            f"| {fmt_ms(target.med('p99'))} ms | {target.med('cpu_per_answer') * 1000:.2f} ms |"
        )
        for ref in refs:
            line += (
                f" {fmt_ratio(target.med('throughput'), ref.med('throughput'))}"
                f" | {fmt_ratio(target.med('p99'), ref.med('p99'))}"
                f" | {fmt_ratio(target.med('cpu_per_answer'), ref.med('cpu_per_answer'))} |"
            )
        lines.append(line)
    return lines


def ratios(targets: list[Target]) -> list[str]:
    by_key = {t.key: t for t in targets}
    lines = []
    for ref_key in ("wechatpy", "fastapi"):
        ref = by_key.get(ref_key)
        if ref is None:
            continue
        for target in targets:
            if not target.is_service:
                continue
            lines.append(
                f"  {target.label} / {ref.label}: req/s "
                f"{fmt_ratio(target.med('throughput'), ref.med('throughput'))}, p99 "
                f"{fmt_ratio(target.med('p99'), ref.med('p99'))}, CPU per callback "
                f"{fmt_ratio(target.med('cpu_per_answer'), ref.med('cpu_per_answer'))}"
            )
            mine, theirs = _quiet_rounds(target), _quiet_rounds(ref)
            if mine and theirs:
                lines.append(
                    f"    quiet rounds only: req/s "
                    f"{fmt_ratio(_med(mine, 'throughput'), _med(theirs, 'throughput'))}, "
                    f"CPU per callback "
                    f"{fmt_ratio(_med(mine, 'cpu_per_answer'), _med(theirs, 'cpu_per_answer'))}"
                )
    default, gevent = by_key.get("service"), by_key.get("service_gevent")
    if default and gevent:
        lines.append(
            f"  worker class gevent / default (GracefulGeventWorker): p99 "
            f"{fmt_ratio(gevent.med('p99'), default.med('p99'))}, req/s "
            f"{fmt_ratio(gevent.med('throughput'), default.med('throughput'))}"
        )
    return lines


def details(targets: list[Target]) -> list[str]:
    lines = []
    for target in targets:
        rounds = ", ".join(
            f"{r.throughput:.0f}/s p99 {fmt_ms(r.p99)} CPU {r.cpu_per_answer * 1000:.2f} ms"
            f" (CPU 0 busy with others {r.foreign:.0%})"
            for r in target.rounds
        )
        lines.append(f"  {target.label}: rounds [{rounds}]")
        lines.append(
            f"    replies {target.total('replies')}, empty {target.total('empty')}, "
            f"non-200 {target.total('non_200')}, socket errors/timeouts "
            f"{target.total('socket_errors')}; sanity: {target.sanity}; sampler: "
            f"{target.sampled.describe()}; worker RSS {target.rss / 2**20:.0f} MiB"
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


def report(targets: list[Target]) -> None:
    print_rows(table_rows(targets), TABLE_COLUMNS)
    print("\nRatios (medians over rounds):")
    print("\n".join(ratios(targets)))
    print("\nDetails:")
    print("\n".join(details(targets)))
    print("\nMarkdown:")
    print("\n".join(markdown_table(targets)))


def main() -> int:
    from .common import pin_this_process

    pin_this_process()
    started = time.monotonic()
    targets = run_plain()
    report(targets)
    print(f"\n(scenario A took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
