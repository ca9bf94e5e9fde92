"""Where one worker's time goes on the hot path: py-spy samples the service under wrk load.

    .venv/bin/python -m bench.profile                 # writes bench/PROFILE.txt
    .venv/bin/python -m bench.profile --seconds 10 --output /tmp/profile.txt

The service runs as in scenario A (one worker on CPU 0, gunicorn.conf.py defaults, the user
handler module, SQLite); wrk (CPU 1) replays distinct callbacks while py-spy (``--nonblocking``,
also on CPU 1) samples the worker. The text file lists the functions with the most samples on
top of the stack (self) and on the stack at all (inclusive), and the share of each area
(protocol, store, Flask, gevent's server, logging ...). Needs py-spy (bench/requirements.txt) and
the right to trace the worker (root, or ptrace allowed).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .common import BENCH_DIR, CLIENT_CPU, SERVER_CPU, pin_this_process, pinned, service_server
from .plain_callbacks import USER_HANDLERS, _write_pool
from .pool import CallbackFactory
from .wrkrun import run_wrk

SEGMENT_SECONDS = 2.0

# Areas by file path, first match wins: what each share of the samples is spent on.
AREAS = (
    ("access log (gunicorn glogging)", r"gunicorn/glogging\.py"),
    ("logging (stdlib)", r"/logging/"),
    ("protocol (app/wecom)", r"app/wecom/"),
    ("XML parsing (xmltodict, expat)", r"xmltodict|pyexpat|expat"),
    ("AES (pycryptodome)", r"Crypto/"),
    ("store (app/infra/store + sqlite3)", r"app/infra/store/|sqlite3"),
    ("deadline, jobs (app/jobs)", r"app/jobs/"),
    ("routing, handler (app/routing, bench)", r"app/routing/|bench/"),
    ("web layer (app/web)", r"app/web/"),
    ("Flask, Werkzeug", r"flask/|werkzeug/"),
    ("JSON", r"/json/"),
    ("threading, gevent hub", r"threading\.py|gevent/(hub|_threading|thread|event|greenlet)"),
    ("gevent pywsgi server", r"gevent/(pywsgi|baseserver|server|_socket|socket|pool)"),
    ("gunicorn worker", r"gunicorn/"),
)


def _frame_parts(frame: str) -> tuple[str, str]:
    """``"function (path:line)"`` → (``"function (path)"``, path)."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame, ""
    function, path = match.groups()
    short = re.sub(r"^.*?/(site-packages|lib/python3\.\d+)/", "", path)
    short = re.sub(r"^.*?/(app|bench)/", r"\1/", short)
    return f"{function} ({short})", path


def summarise(raw: str, top: int = 30) -> list[str]:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_parts(f) for f in stack.split(";") if f]
        if not frames:
            continue
        self_counts[frames[-1][0]] += count
        for name in {name for name, _path in frames}:
            inclusive[name] += count
        leaf_path = frames[-1][1]
        area = next((a for a, pattern in AREAS if re.search(pattern, leaf_path)), "other")
        areas[area] += count
    if not total:
        return ["no samples"]

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    lines = [f"{total} samples", "", "By area (the function on top of the stack):"]
    lines += [f"  {pct(n)}  {area}" for area, n in areas.most_common()]
    lines += ["", f"Top {top} functions by self samples:"]
    lines += [f"  {pct(n)}  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", f"Top {top} functions by inclusive samples (on the stack at all):"]
    lines += [f"  {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "PROFILE.txt")
    parser.add_argument("--tree", type=Path, help="profile the service of another source tree")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        parser.error("py-spy is not installed (pip install -r bench/requirements.txt)")
    pin_this_process()
    factory = CallbackFactory()
    with tempfile.TemporaryDirectory(prefix="wecom-profile-") as tmp:
        workdir = Path(tmp)
        server = service_server(
            "profiled",
            None,
            workdir / "store.db",
            extra_env={"WECOM_HANDLERS": USER_HANDLERS},
            cpu=SERVER_CPU,
        )
        if args.tree is not None:
            server.cwd = args.tree.resolve()
        with server:
            warm, _ = _write_pool(workdir, factory, list(factory.texts(4000)), "warm")
            run_wrk(server.url + "/", warm, connections=64, seconds=2)
            (worker,) = server.workers
            raw = workdir / "stacks.txt"
            spy = subprocess.Popen(
                pinned(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(worker),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(round(args.seconds) + 30),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(raw),
                    ],
                    CLIENT_CPU,
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
            # Segments of 2 s, each with callbacks signed just before (fresh CreateTime, as
            # WeCom's); the worker idles while a pool is made, and py-spy drops idle samples.
            answers, elapsed, p99s = 0, 0.0, []
            segments = max(round(args.seconds / SEGMENT_SECONDS), 1)
            for index in range(segments):
                callbacks = list(factory.texts(int(3000 * SEGMENT_SECONDS), tag=f"p{index}-"))
                pool, _ = _write_pool(workdir, factory, callbacks, f"profile{index}")
                load = run_wrk(server.url + "/", pool, connections=64, seconds=SEGMENT_SECONDS)
                answers += load.answers
                elapsed += load.duration
                p99s.append(load.p99)
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
            try:
                _out, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(10)
                raise
            if not raw.exists():
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
            stacks = raw.read_text()
            if args.raw:
                args.raw.write_text(stacks)
    throughput = answers / elapsed if elapsed else float("nan")
    header = [
        "One-worker profile of the hot path (python -m bench.profile): py-spy "
        f"--rate {args.rate} --nonblocking on the worker, {time.strftime('%Y-%m-%d')}.",
        f"Load: wrk -t1 -c64, {segments} segments of {SEGMENT_SECONDS:g} s, distinct signed, "
        f"encrypted text callbacks; {throughput:.0f} req/s, median p99 "
        f"{sorted(p99s)[len(p99s) // 2] * 1000:.1f} ms while sampled.",
        "Service: gunicorn.conf.py defaults, one worker, WECOM_HANDLERS=bench.echo_handlers, "
        "SQLite store.",
        "",
    ]
    text = "\n".join(header + summarise(stacks)) + "\n"
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
