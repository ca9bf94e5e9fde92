"""Scenario B, "slow handlers": 200 callbacks at once whose handler takes 2 s, then 10 s.

The service (one gunicorn worker) runs bench/slow_handlers.py: every handler sleeps
BENCH_HANDLER_SECONDS with ``time.sleep`` (cooperative under gevent) before answering.

* 2 s handlers: every callback should get its passive reply after ~2 s, well inside WeCom's
  5 s; the figures say how many did, and the latency spread.
* 10 s handlers: the handler misses the reply deadline (WECOM_REPLY_DEADLINE, 4 s), so every
  callback should be answered empty at ~4 s and the answer sent later through message/send.
  For that the service needs WECOM_SECRET, WECOM_AGENT_ID and WECOM_API_BASE: they point at
  the fake WeCom API (``python -m app.devtools.fakewecom``) when the tree has it, and the
  figures then say when the late answers reached message/send. Without the fake that
  part is skipped.

Each burst: 200 connections are opened first, then each sends one callback at the same moment
(the Python generator, bench/loadgen.py). Run alone::

    .venv/bin/python -m bench.slow_callbacks

Settings (environment): BENCH_BURST (200), BENCH_SLOW_CLASSES (``gevent_pywsgi,gevent``),
BENCH_FAST_HANDLER (2), BENCH_SLOW_HANDLER (10), BENCH_DELIVERY_WAIT (60: how long to wait for
the late answers, at most).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app.devtools.simulator import SimulationError, Simulator

from .common import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    HOST,
    PROJECT_ROOT,
    SECRET,
    SERVER_CPU,
    TOKEN,
    env_float,
    env_int,
    fmt_ms,
    fmt_ratio,
    job_states,
    median,
    service_server,
)
from .loadgen import LoadResult, run_load
from .pool import CallbackFactory

WECOM_BUDGET = 5.0  # WeCom gives up on an answer after 5 s (and retries the callback)
BURST_TIMEOUT = 30.0


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Burst:
    worker_class: str
    handler_seconds: float
    sent: int = 0
    load: LoadResult | None = None
    within_budget: int = 0  # HTTP answers (any status) within WECOM_BUDGET seconds
    replies_ok: int = 0  # passive replies that decrypt, verify and carry the expected answer
    replies_bad: int = 0
    empty: int = 0
    non_200: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    trouble: list[str] = field(default_factory=list)
    # Late delivery through the fake WeCom API (10 s handlers only)
    delivery_note: str = ""
    delivered: int = 0
    duplicates: int = 0
    delivery_times: list[float] = field(default_factory=list)  # seconds since the burst
    gettoken_calls: int | None = None

    def pct(self, p: float) -> float:
        return self.load.pct(p) if self.load else float("nan")

    @property
    def max(self) -> float:
        return max(self.load.latencies, default=float("nan")) if self.load else float("nan")


# -- the fake WeCom API ------------------------------------------------------------------------
class FakeWeComProcess:
    """``python -m app.devtools.fakewecom`` on a free loopback port, in its own process group."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()

    @staticmethod
    def available() -> bool:
        return (PROJECT_ROOT / "app" / "devtools" / "fakewecom" / "__main__.py").is_file()

    def start(self, timeout: float = 15.0) -> FakeWeComProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.devtools.fakewecom",
                "--port",
                "0",
                "--corp-id",
                CORP_ID,
                "--secret",
                SECRET,
                "--agent-id",
                AGENT_ID,
                "--max-lifetime",
                "300",
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.stop()
                raise RuntimeError(f"the fake WeCom printed no URL within {timeout} s")
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith(f"http://{HOST}:"):
            self.stop()
            self.stderr.seek(0)
            raise RuntimeError(f"the fake WeCom said {line!r}: {self.stderr.read()[-2000:]!r}")
        self.base_url = line
        return self

    @property
    def control_url(self) -> str:
        return self.base_url.removesuffix("cgi-bin/") + "_fake/"

    def get(self, action: str) -> dict:
        with urllib.request.urlopen(self.control_url + action, timeout=5) as answer:
            return json.loads(answer.read())

    def post(self, action: str) -> dict:
        request = urllib.request.Request(self.control_url + action, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()


# -- one burst ---------------------------------------------------------------------------------
def _expected(handler_seconds: float, content: str) -> str:
    # What bench/slow_handlers.py answers; kept in step with it.
    return f"慢速回答({handler_seconds:g} 秒):{content}"


def _burst(
    burst: Burst,
    workdir: Path,
    count: int,
    fake: FakeWeComProcess | None,
    delivery_wait: float,
) -> None:
    store = workdir / f"{burst.worker_class}-{burst.handler_seconds:g}.db"
    env = {
        "WECOM_HANDLERS": "bench.slow_handlers",
        "BENCH_HANDLER_SECONDS": f"{burst.handler_seconds:g}",
    }
    if fake is not None:
        env.update(WECOM_SECRET=SECRET, WECOM_AGENT_ID=AGENT_ID, WECOM_API_BASE=fake.base_url)
    server = service_server(
        f"slow-{burst.worker_class}", burst.worker_class, store, extra_env=env, cpu=SERVER_CPU
    )
    factory = CallbackFactory()
    tag = f"{burst.worker_class}-{burst.handler_seconds:g}s-"
    # One member per callback, so each late answer can be traced to its callback.
    callbacks = list(factory.texts(count, users=count, tag=tag))
    contents = {c.from_user: f"压测消息 {tag}{index}" for index, c in enumerate(callbacks)}
    opener = Simulator("http://unused/", TOKEN, AES_KEY, CORP_ID)
    try:
        server.start()
        if fake is not None:
            fake.post("reset")
        pool = [c.raw_http(f"{HOST}:{server.port}") for c in callbacks]
        burst_wall = time.time()
        load = run_load(
            HOST,
            server.port,
            pool,
            connections=count,
            duration=2.0,
            timeout=BURST_TIMEOUT,
            per_connection=1,
            keep_bodies=True,
        )
        burst.load = load
        burst.sent = count - load.unsent
        for sample in load.samples:
            if sample.latency <= WECOM_BUDGET:
                burst.within_budget += 1
            if sample.status != 200:
                burst.non_200 += 1
            elif not sample.body:
                burst.empty += 1
            else:
                try:
                    reply = opener.open_reply(sample.body or b"")
                except (SimulationError, ValueError) as exc:
                    log(f"bad passive reply: {exc}")
                    reply = None
                # The reply goes back to the member who wrote: that names the callback.
                user = str((reply or {}).get("ToUserName", ""))
                expected = _expected(burst.handler_seconds, contents.get(user, "?"))
                if reply is not None and reply.get("Content") == expected:
                    burst.replies_ok += 1
                else:
                    burst.replies_bad += 1
        log(
            f"{burst.worker_class}, {burst.handler_seconds:g} s handlers: "
            f"{burst.within_budget}/{count} answered within {WECOM_BUDGET:g} s, "
            f"p50 {fmt_ms(burst.pct(50))} ms, max {fmt_ms(burst.max)} ms, "
            f"{burst.replies_ok} replies, {burst.empty} empty"
        )
        if fake is not None and burst.empty:
            _await_deliveries(burst, fake, contents, burst_wall, delivery_wait)
        elif burst.empty:
            burst.delivery_note = (
                "skipped: app/devtools/fakewecom is not in the tree, late answers not delivered"
            )
        # Let the last state changes land before the store is read.
        time.sleep(0.5)
    finally:
        server.stop()
        burst.trouble = server.trouble()
        server.close()
    burst.jobs = job_states(store)


def _await_deliveries(
    burst: Burst,
    fake: FakeWeComProcess,
    contents: dict[str, str],
    burst_wall: float,
    delivery_wait: float,
) -> None:
    """Poll the fake's message/send log until every empty-answered callback got its answer."""
    wanted = {user: _expected(burst.handler_seconds, content) for user, content in contents.items()}
    give_up = time.monotonic() + delivery_wait
    seen: dict[str, list[float]] = {}
    while True:
        seen = {}
        for record in fake.get("sent?api=message/send")["sent"]:
            body = record.get("body") or {}
            user = body.get("touser")
            text = (body.get("text") or {}).get("content")
            if user in wanted and text == wanted[user]:
                seen.setdefault(user, []).append(float(record["wall_time"]) - burst_wall)
        if len(seen) >= burst.empty or time.monotonic() >= give_up:
            break
        time.sleep(0.25)
    burst.delivered = len(seen)
    burst.duplicates = sum(len(times) - 1 for times in seen.values())
    burst.delivery_times = sorted(min(times) for times in seen.values())
    with contextlib.suppress(OSError, ValueError, KeyError):
        burst.gettoken_calls = int(fake.get("stats")["gettoken_calls"])
    if burst.delivered < burst.empty:
        burst.delivery_note = (
            f"only {burst.delivered} of {burst.empty} late answers reached message/send "
            f"within {delivery_wait:g} s"
        )
    log(
        f"{burst.worker_class}: {burst.delivered} late answers reached message/send, "
        + (
            f"first {burst.delivery_times[0]:.2f} s, last {burst.delivery_times[-1]:.2f} s "
            "after the burst"
            if burst.delivery_times
            else "none"
        )
    )


def run_slow(
    *,
    count: int | None = None,
    worker_classes: list[str] | None = None,
    fast_seconds: float | None = None,
    slow_seconds: float | None = None,
    delivery_wait: float | None = None,
) -> list[Burst]:
    count = count if count is not None else env_int("BENCH_BURST", 200)
    if worker_classes is None:
        raw = os.environ.get("BENCH_SLOW_CLASSES") or "gevent_pywsgi,gevent"
        worker_classes = [name.strip() for name in raw.split(",") if name.strip()]
    fast_seconds = fast_seconds if fast_seconds is not None else env_float("BENCH_FAST_HANDLER", 2)
    slow_seconds = slow_seconds if slow_seconds is not None else env_float("BENCH_SLOW_HANDLER", 10)
    if delivery_wait is None:
        delivery_wait = env_float("BENCH_DELIVERY_WAIT", 60)
    bursts = []
    fake: FakeWeComProcess | None = None
    if FakeWeComProcess.available():
        fake = FakeWeComProcess().start()
        log(f"fake WeCom API at {fake.base_url}")
    else:
        log("app/devtools/fakewecom not found: late delivery will not be measured")
    log(f"scenario B: bursts of {count} callbacks, worker classes {', '.join(worker_classes)}")
    try:
        with tempfile.TemporaryDirectory(prefix="wecom-bench-slow-") as tmp:
            for handler_seconds in (fast_seconds, slow_seconds):
                for worker_class in worker_classes:
                    burst = Burst(worker_class, handler_seconds)
                    _burst(burst, Path(tmp), count, fake, delivery_wait)
                    bursts.append(burst)
    finally:
        if fake is not None:
            fake.stop()
    return bursts


def table(bursts: list[Burst]) -> list[dict[str, str]]:
    rows = []
    for burst in bursts:
        notes = []
        if burst.replies_ok:
            notes.append(f"{burst.replies_ok} passive replies ok")
        if burst.replies_bad:
            notes.append(f"{burst.replies_bad} BAD replies")
        if burst.empty:
            notes.append(f"{burst.empty} empty")
        if burst.delivered:
            times = burst.delivery_times
            notes.append(
                f"late answers: {burst.delivered} sent, first {times[0]:.1f} s, "
                f"median {median(times):.1f} s, last {times[-1]:.1f} s after the burst"
            )
        if burst.duplicates:
            notes.append(f"{burst.duplicates} DUPLICATE sends")
        if burst.delivery_note:
            notes.append(burst.delivery_note)
        load = burst.load
        errors = burst.non_200 + (sum(load.errors.values()) if load else 0)
        rows.append(
            {
                "scenario": f"B slow {burst.handler_seconds:g} s",
                "server": f"service, {burst.worker_class}",
                "answers": f"{len(load.samples) if load else 0}/{burst.sent}",
                "req/s": "-",
                "p50 ms": fmt_ms(burst.pct(50)),
                "p99 ms": fmt_ms(burst.pct(99)),
                "max ms": fmt_ms(burst.max),
                "<=5 s": str(burst.within_budget),
                "errors": str(errors),
                "notes": "; ".join(notes),
            }
        )
    return rows


def ratios(bursts: list[Burst]) -> list[str]:
    lines = []
    by = {(b.worker_class, b.handler_seconds): b for b in bursts}
    for seconds in sorted({b.handler_seconds for b in bursts}):
        gevent, pywsgi = by.get(("gevent", seconds)), by.get(("gevent_pywsgi", seconds))
        if gevent and pywsgi:
            lines.append(
                f"  {f'B {seconds:g} s p99   service gevent / gevent_pywsgi':<46} = "
                f"{fmt_ratio(gevent.pct(99), pywsgi.pct(99))} (max: "
                f"{fmt_ratio(gevent.max, pywsgi.max)})"
            )
        for burst in (pywsgi, gevent):
            if burst and burst.delivery_times:
                last = burst.delivery_times[-1]
                label = f"B {seconds:g} s last late answer / handler, {burst.worker_class}"
                lines.append(f"  {label:<46} = {last / seconds:.2f} ({last:.2f} s after the burst)")
    return lines


def details(bursts: list[Burst]) -> list[str]:
    lines = []
    for burst in bursts:
        load = burst.load
        lines.append(
            f"  {burst.worker_class}, {burst.handler_seconds:g} s handlers: sent {burst.sent}, "
            f"answered {len(load.samples) if load else 0}, within {WECOM_BUDGET:g} s "
            f"{burst.within_budget}, passive replies ok {burst.replies_ok} / bad "
            f"{burst.replies_bad}, empty {burst.empty}, non-200 {burst.non_200}, "
            f"socket errors {dict(load.errors) if load else {}}"
        )
        if load and load.samples:
            lines.append(
                f"    HTTP latency min {fmt_ms(min(load.latencies))} ms, p50 "
                f"{fmt_ms(burst.pct(50))}, p99 {fmt_ms(burst.pct(99))}, max "
                f"{fmt_ms(burst.max)} ms"
            )
        if burst.delivery_times:
            t = burst.delivery_times
            lines.append(
                f"    late answers via message/send: {burst.delivered} of {burst.empty}, "
                f"first {t[0]:.2f} s, median {median(t):.2f} s, last {t[-1]:.2f} s after the "
                f"burst; duplicates {burst.duplicates}; gettoken calls {burst.gettoken_calls}"
            )
        if burst.delivery_note:
            lines.append(f"    {burst.delivery_note}")
        lines.append(f"    store: {burst.jobs}")
        if burst.trouble:
            lines.append(f"    server log: {len(burst.trouble)} error lines, first:")
            lines.extend(f"      {line[:160]}" for line in burst.trouble[:3])
    return lines


def main() -> int:
    from .run import print_scenario

    started = time.monotonic()
    bursts = run_slow()
    sections = [("Ratios:", ratios(bursts)), ("Scenario B details:", details(bursts))]
    print_scenario("scenario B", table(bursts), sections, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
