"""CPU per callback in one process, without HTTP: the service's WSGI app under gevent.

    .venv/bin/python -m bench.inprocess                       # this tree
    .venv/bin/python -m bench.inprocess --tree /tmp/proto     # another tree (a prototype)

The process patches the standard library with gevent (as the gunicorn worker does), builds the
app with the SQLite store and the user handler module, and sends freshly signed text callbacks
through Flask's test client from ``--concurrency`` greenlets at once (so writes of concurrent
callbacks can meet, as they do in a worker). The figure is the process's CPU time per callback
(``time.process_time``), the best of all runs (``--repeat`` per process, ``--rounds`` processes
per tree, the trees taking turns): load from other processes inflates CPU time too (caches), so
the best run is the one least disturbed. No HTTP server, no access log: the
difference between two trees is the difference in their app code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _measure_here(
    count: int, concurrency: int, repeat: int, store: str = "sqlite"
) -> dict[str, float]:
    from gevent import monkey

    monkey.patch_all()
    import tempfile
    import time

    import gevent
    from gevent.pool import Pool

    from app import create_app
    from bench.common import AES_KEY, CORP_ID, TOKEN
    from bench.pool import CallbackFactory

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="wecom-inprocess-") as tmp:
        app = create_app(
            {
                "WECOM_TOKEN": TOKEN,
                "WECOM_AES_KEY": AES_KEY,
                "WECOM_CORP_ID": CORP_ID,
                "WECOM_STORE": f"sqlite:///{tmp}/store.db" if store == "sqlite" else "memory://",
                "WECOM_HANDLERS": "bench.echo_handlers",
            }
        )
        client = app.test_client()
        factory = CallbackFactory()
        best = float("inf")
        for index in range(repeat + 1):  # the first run warms up
            callbacks = list(factory.texts(count, tag=f"in{index}-"))
            bad = 0

            def send(callback) -> None:
                nonlocal bad
                answer = client.post(
                    callback.target, data=callback.body, content_type="text/xml; charset=utf-8"
                )
                if answer.status_code != 200 or not answer.data:
                    bad += 1

            started = time.process_time()
            pool = Pool(concurrency)
            for callback in callbacks:
                pool.spawn(send, callback)
            pool.join()
            used = time.process_time() - started
            if bad:
                raise RuntimeError(f"{bad} callbacks were not answered with a passive reply")
            if index:
                best = min(best, used / count)
            gevent.sleep(0.1)
        figures["cpu_ms_per_callback"] = best * 1000
        app.extensions["wecom"].stop_background()
    return figures


def measure_tree(
    tree: Path, count: int, concurrency: int, repeat: int, store: str = "sqlite"
) -> dict[str, float]:
    """Run the measurement in a fresh process whose ``app`` comes from ``tree``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(PROJECT_ROOT)])
    env = {k: v for k, v in env.items() if not k.startswith("WECOM_")}
    # This file, loaded under another name: the tree may have a bench/ of its own.
    here = str(Path(__file__).resolve())
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('inprocess_child', {here!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"print(json.dumps(module._measure_here({count}, {concurrency}, {repeat}, {store!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="measured runs per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per tree, interleaved")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in args.tree or [PROJECT_ROOT]]
    best: dict[Path, list[float]] = {tree: [] for tree in trees}
    for _round in range(args.rounds):  # interleaved, so that drift hits every tree alike
        for tree in trees:
            figures = measure_tree(tree, args.count, args.concurrency, args.repeat, args.store)
            best[tree].append(figures["cpu_ms_per_callback"])
    for tree, values in best.items():
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"{min(values):.3f} ms CPU per callback (best; runs {runs})  {tree} ({args.store})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
