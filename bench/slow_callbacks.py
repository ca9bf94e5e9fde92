"""Scenario B, "slow handlers at scale": bursts of 1,000 callbacks at once on 2 workers, whose
handlers take 2 s, then 10 s (the goal of issue 9).

The service runs as deployed (``gunicorn -c gunicorn.conf.py wsgi:app``, its default worker
class, the SQLite store) with ``BENCH_SLOW_WORKERS`` workers and bench/slow_handlers.py: every
handler sleeps BENCH_HANDLER_SECONDS with ``time.sleep`` (cooperative under gevent), as one
waiting on a business API or an LLM would.

* 2 s handlers: every callback should get its passive reply after ~2 s, inside WeCom's 5 s.
* 10 s handlers: the handler misses the reply deadline (WECOM_REPLY_DEADLINE, 4 s), so every
  callback should be answered empty at ~4 s, and its answer sent once, later, through
  message/send of the fake WeCom API (``python -m app.devtools.fakewecom``, bench/fake_wecom.py),
  which the service reaches through WECOM_API_BASE.

Each burst: ``BENCH_BURST`` connections are opened first, then each sends one callback (its own
MsgId, its own sender) at the same moment (the Python generator, bench/loadgen.py). After the
HTTP answers, the burst waits until no job of the store is still running, deferred or in the
outbox (nothing more can reach message/send), then reads what the fake received. Run alone::

    .venv/bin/python -m bench.slow_callbacks

Settings (environment): BENCH_BURST (1000), BENCH_SLOW_WORKERS (2), BENCH_SLOW_CLASSES
(``default``: gunicorn.conf.py's class; e.g. ``default,gevent_pywsgi`` to compare),
BENCH_SLOW_CPUS (unset: the workers may run on every core; e.g. ``0`` pins them),
BENCH_FAST_HANDLER (2), BENCH_SLOW_HANDLER (10), BENCH_DELIVERY_WAIT (60: how long after a burst
to wait, at most, for the late answers). The figures are printed by bench/slow_report.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.devtools.simulator import SimulationError, Simulator

from .common import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    HOST,
    SECRET,
    TOKEN,
    env_float,
    env_int,
    fmt_ms,
    job_states,
    pin_this_process,
    service_server,
)
from .fake_wecom import FakeWeComProcess
from .loadgen import LoadResult, run_load
from .pool import CallbackFactory
from .service_records import (
    active_jobs,
    callback_lines,
    cpu_usage,
    jobs_by_owner_pid,
    wait_for_workers,
    warning_counts,
)
from .workers import ProcessWatch, open_files_limit, raise_open_files

WECOM_BUDGET = 5.0  # WeCom gives up on an answer after 5 s (and retries the callback)
REPLY_DEADLINE = 4.0  # the service's WECOM_REPLY_DEADLINE default, which the bench keeps
BURST_TIMEOUT = 30.0
SETTLE_POLL = 0.25


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Burst:
    worker_class: str  # "default": the class gunicorn.conf.py chooses
    workers: int
    handler_seconds: float
    count: int
    load: LoadResult | None = None
    sent: int = 0
    within_budget: int = 0  # HTTP answers (any status) within WECOM_BUDGET of their send
    replies_ok: int = 0  # passive replies that verify, decrypt and carry the expected text
    replies_bad: int = 0
    empty: int = 0
    empty_latencies: list[float] = field(default_factory=list)
    non_200: Counter[int] = field(default_factory=Counter)
    # What reached message/send of the fake
    fake: bool = False
    delivered: int = 0  # callbacks answered empty whose answer reached message/send
    delivery_times: list[float] = field(default_factory=list)  # first send, s after the burst
    duplicates: int = 0  # sends beyond the first for one callback (MsgId)
    also_passive: int = 0  # callbacks answered passively that were also sent through the API
    wrong_sends: int = 0  # sends to a sender of the burst with a text not its own
    sent_unanswered: int = 0  # callbacks with no good HTTP answer whose answer was sent
    gettoken_calls: int | None = None
    settled_after: float | None = None  # s after the burst until no job was left active
    # The store and the processes
    jobs: dict[str, int] = field(default_factory=dict)
    jobs_by_worker: dict[int, int] = field(default_factory=dict)  # pid -> jobs it owns
    worker_pids: list[int] = field(default_factory=list)
    rss_before: dict[int, int] = field(default_factory=dict)
    rss_peak: dict[int, int] = field(default_factory=dict)
    fds_peak: dict[int, int] = field(default_factory=dict)
    nofile_generator: int = 0
    nofile_workers: list[int | None] = field(default_factory=list)
    cpu_seconds: float = float("nan")  # the server's CPU from the burst to settling
    # CPU seconds from the burst to its last HTTP answer: wall time, the service, this process
    # (the generator), the fake, and every CPU of the machine busy (the rest: other processes)
    http_cpu: dict[str, float] = field(default_factory=dict)
    # From the service's line per callback: which worker answered, and its own timing
    answered_by: Counter[int] = field(default_factory=Counter)  # pid -> callbacks
    outcomes: Counter[str] = field(default_factory=Counter)
    app_seconds: list[float] = field(default_factory=list)  # as the service timed the answer
    app_seconds_by_worker: dict[int, list[float]] = field(default_factory=dict)
    outside_seconds: list[float] = field(default_factory=list)  # latency less the service's
    notes: list[str] = field(default_factory=list)
    trouble: list[str] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return f"{self.workers} workers, {self.worker_class}"

    def pct(self, p: float) -> float:
        return self.load.pct(p) if self.load else float("nan")

    @property
    def max(self) -> float:
        return max(self.load.latencies, default=float("nan")) if self.load else float("nan")

    @property
    def socket_errors(self) -> int:
        return sum(self.load.errors.values()) if self.load else 0


def _expected(handler_seconds: float, content: str) -> str:
    # What bench/slow_handlers.py answers; kept in step with it.
    return f"慢速回答({handler_seconds:g} 秒):{content}"


def _check_answers(burst: Burst, senders: list[str], contents: dict[str, str]) -> dict[str, str]:
    """Sort the HTTP answers; return how each callback (by its sender) was answered:
    ``passive``, ``empty``, ``bad`` (a reply that does not open or says the wrong thing) or
    ``failed`` (not a 200). Callbacks with a socket error are missing."""
    assert burst.load is not None
    opener = Simulator("http://unused/", TOKEN, AES_KEY, CORP_ID)
    answers: dict[str, str] = {}
    for sample in burst.load.samples:
        sender = senders[sample.request] if 0 <= sample.request < len(senders) else "?"
        if sample.latency <= WECOM_BUDGET:
            burst.within_budget += 1
        if sample.status != 200:
            burst.non_200[sample.status] += 1
            answers[sender] = "failed"
            continue
        if not sample.body:
            burst.empty += 1
            burst.empty_latencies.append(sample.latency)
            answers[sender] = "empty"
            continue
        try:
            reply = opener.open_reply(sample.body)
        except (SimulationError, ValueError) as exc:
            log(f"bad passive reply: {exc}")
            reply = None
        # The reply goes back to the member who wrote, and says what the handler answers.
        expected = _expected(burst.handler_seconds, contents[sender])
        if reply is not None and (reply.get("ToUserName"), reply.get("Content")) == (
            sender,
            expected,
        ):
            burst.replies_ok += 1
            answers[sender] = "passive"
        else:
            burst.replies_bad += 1
            answers[sender] = "bad"
    return answers


def _settle(
    burst: Burst, store: Path, fake: FakeWeComProcess | None, burst_wall: float, wait: float
) -> None:
    """Wait (bounded) until the late answers reached message/send and no job is left active."""
    give_up = time.monotonic() + wait
    while time.monotonic() < give_up:
        if fake is not None and burst.empty:
            sent = fake.get("sent?api=message/send")["total"]
            if sent < burst.empty:  # the store is read only once the sends look complete
                time.sleep(SETTLE_POLL)
                continue
        if active_jobs(store) == 0:
            burst.settled_after = time.time() - burst_wall
            return
        time.sleep(SETTLE_POLL)
    active = active_jobs(store)
    burst.notes.append(f"{active} jobs still active {wait:g} s after the burst: gave up waiting")


def _read_sends(
    burst: Burst,
    fake: FakeWeComProcess,
    contents: dict[str, str],
    answers: dict[str, str],
    wall: float,
) -> None:
    """What reached message/send, per callback (each has its own sender)."""
    wanted = {user: _expected(burst.handler_seconds, text) for user, text in contents.items()}
    seen: dict[str, list[float]] = {}
    for record in fake.get("sent?api=message/send")["sent"]:
        body = record.get("body") or {}
        user = body.get("touser")
        if user not in wanted:
            continue
        if (body.get("text") or {}).get("content") != wanted[user]:
            burst.wrong_sends += 1
            continue
        seen.setdefault(user, []).append(float(record["wall_time"]) - wall)
    late = {user: times for user, times in seen.items() if answers.get(user) == "empty"}
    burst.delivered = len(late)
    burst.delivery_times = sorted(min(times) for times in late.values())
    burst.duplicates = sum(len(times) - 1 for times in seen.values())
    burst.also_passive = sum(1 for user in seen if answers.get(user) == "passive")
    burst.sent_unanswered = sum(1 for user in seen if answers.get(user) not in ("empty", "passive"))
    with contextlib.suppress(OSError, ValueError, KeyError):
        burst.gettoken_calls = int(fake.get("stats")["gettoken_calls"])
    if burst.delivered < burst.empty:
        burst.notes.append(
            f"LOST: {burst.empty - burst.delivered} of {burst.empty} callbacks answered empty "
            "never reached message/send"
        )


def _match_callback_lines(burst: Burst, output: str, msg_ids: list[str]) -> None:
    """Match the service's line per callback to the latency the generator saw: the difference
    is the time outside the service's own clock (queued before the app was entered, and the
    answer's way back)."""
    lines = callback_lines(output)
    for line in lines.values():
        burst.answered_by[line.pid] += 1
        burst.outcomes[line.outcome] += 1
        burst.app_seconds_by_worker.setdefault(line.pid, []).append(line.seconds)
    for sample in burst.load.samples if burst.load else []:
        msg_id = msg_ids[sample.request] if 0 <= sample.request < len(msg_ids) else ""
        if msg_id in lines:
            burst.app_seconds.append(lines[msg_id].seconds)
            burst.outside_seconds.append(sample.latency - lines[msg_id].seconds)


def run_burst(burst: Burst, workdir: Path, fake: FakeWeComProcess | None, wait: float) -> None:
    store = workdir / f"{burst.worker_class}-{burst.handler_seconds:g}.db"
    env = {
        "WECOM_HANDLERS": "bench.slow_handlers",
        "BENCH_HANDLER_SECONDS": f"{burst.handler_seconds:g}",
    }
    if fake is not None:
        env.update(WECOM_SECRET=SECRET, WECOM_AGENT_ID=AGENT_ID, WECOM_API_BASE=fake.base_url)
    server = service_server(
        f"slow-{burst.worker_class}",
        None if burst.worker_class == "default" else burst.worker_class,
        store,
        workers=burst.workers,
        extra_env=env,
        cpu=os.environ.get("BENCH_SLOW_CPUS") or None,
    )
    factory = CallbackFactory()
    tag = f"{burst.worker_class}-{burst.handler_seconds:g}s-"
    # One sender per callback, so each answer (passive or sent later) names its callback.
    callbacks = list(factory.texts(burst.count, users=burst.count, tag=tag))
    contents = {c.from_user: c.content for c in callbacks}
    watch: ProcessWatch | None = None
    try:
        server.start()
        burst.worker_pids = wait_for_workers(server, burst.workers, store)
        burst.nofile_workers = [open_files_limit(pid) for pid in burst.worker_pids]
        if fake is not None:
            fake.post("reset")
            burst.fake = True
        pool = [c.raw_http(f"{HOST}:{server.port}") for c in callbacks]
        watch = ProcessWatch(burst.worker_pids).start()
        cpu_before = server.cpu_seconds()
        fake_pids = [fake.process.pid] if fake is not None and fake.process else []
        usage_before = cpu_usage(server, fake_pids)
        burst_wall = time.time()
        burst.load = run_load(
            HOST,
            server.port,
            pool,
            connections=burst.count,
            duration=2.0,
            timeout=BURST_TIMEOUT,
            per_connection=1,
            keep_bodies=True,
        )
        burst.sent = burst.count - burst.load.unsent
        burst.http_cpu = {
            name: after - usage_before[name] for name, after in cpu_usage(server, fake_pids).items()
        }
        senders = [c.from_user for c in callbacks]
        answers = _check_answers(burst, senders, contents)
        log(
            f"{burst.label}, {burst.handler_seconds:g} s handlers: {burst.within_budget}/"
            f"{burst.count} answered within {WECOM_BUDGET:g} s, p50 {fmt_ms(burst.pct(50))} ms, "
            f"max {fmt_ms(burst.max)} ms, {burst.replies_ok} replies, {burst.empty} empty"
        )
        _settle(burst, store, fake, burst_wall, wait)
        burst.cpu_seconds = server.cpu_seconds() - cpu_before
        if fake is not None:
            _read_sends(burst, fake, contents, answers, burst_wall)
        elif burst.empty:
            burst.notes.append("no fake WeCom API in the tree: late answers not measured")
    finally:
        if watch is not None:
            watch.stop()
            burst.rss_before, burst.rss_peak = watch.rss_before, watch.rss_peak
            burst.fds_peak = watch.fds_peak
        server.stop()
        burst.trouble = server.trouble()
        burst.warnings = warning_counts(server.output())
        _match_callback_lines(burst, server.output(), [c.msg_id for c in callbacks])
        server.close()
    burst.jobs = job_states(store)
    burst.jobs_by_worker = jobs_by_owner_pid(store)


def run_slow(
    *,
    count: int | None = None,
    workers: int | None = None,
    worker_classes: list[str] | None = None,
    fast_seconds: float | None = None,
    slow_seconds: float | None = None,
    delivery_wait: float | None = None,
) -> list[Burst]:
    count = count if count is not None else env_int("BENCH_BURST", 1000)
    workers = workers if workers is not None else env_int("BENCH_SLOW_WORKERS", 2)
    if worker_classes is None:
        raw = os.environ.get("BENCH_SLOW_CLASSES") or "default"
        worker_classes = [name.strip() for name in raw.split(",") if name.strip()]
    fast_seconds = fast_seconds if fast_seconds is not None else env_float("BENCH_FAST_HANDLER", 2)
    slow_seconds = slow_seconds if slow_seconds is not None else env_float("BENCH_SLOW_HANDLER", 10)
    if delivery_wait is None:
        delivery_wait = env_float("BENCH_DELIVERY_WAIT", 60)
    # The generator holds a socket per callback; a worker may hold as many, plus one to the API
    # for each late answer. The servers inherit the limit from this process.
    nofile = raise_open_files(2 * count + 512)
    bursts = []
    fake: FakeWeComProcess | None = None
    if FakeWeComProcess.available():
        fake = FakeWeComProcess().start()
        log(f"fake WeCom API at {fake.base_url}")
    else:
        log("app/devtools/fakewecom not found: late delivery will not be measured")
    log(
        f"scenario B: bursts of {count} callbacks on {workers} workers, worker classes "
        f"{', '.join(worker_classes)}; open files limit {nofile}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="wecom-bench-slow-") as tmp:
            for handler_seconds in (fast_seconds, slow_seconds):
                for worker_class in worker_classes:
                    burst = Burst(worker_class, workers, handler_seconds, count)
                    burst.nofile_generator = nofile
                    run_burst(burst, Path(tmp), fake, delivery_wait)
                    bursts.append(burst)
    finally:
        if fake is not None:
            fake.stop()
    return bursts


def main() -> int:
    from .slow_report import print_report

    pin_this_process()
    started = time.monotonic()
    bursts = run_slow()
    print_report(bursts)
    print(f"\n(scenario B took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
