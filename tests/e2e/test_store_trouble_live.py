"""The store in trouble under real gunicorn gevent workers: held by another process (nothing
waits inside SQLite, so the workers keep answering) and unreadable when the workers boot (the
service stays up, answers 503, and recovers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService, one_shot_simulator
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

KEYS = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}
HOLD_SECONDS = 3


def hold_write_lock(path: Path) -> subprocess.Popen:
    """Another process takes the store's write lock and keeps it HOLD_SECONDS."""
    script = textwrap.dedent(
        f"""
        import sqlite3, sys, time
        conn = sqlite3.connect(sys.argv[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep({HOLD_SECONDS})
        conn.execute("COMMIT")
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_held_store_never_stops_the_workers(tmp_path: Path):
    path = tmp_path / "state.db"
    with LiveService(KEYS | {"WECOM_STORE": f"sqlite:///{path}"}, workers=2) as service:
        wecom = one_shot_simulator(service.url)
        assert wecom.send_text("warm up").status == 200
        holder = hold_write_lock(path)
        try:
            (health_status, health), health_took = timed(service.health)
            with ThreadPoolExecutor(8) as pool:
                results = list(
                    pool.map(
                        lambda i: timed(lambda: wecom.send_text(f"held {i}", MsgId=f"13{i:02}")),
                        range(16),
                    )
                )
        finally:
            holder.wait(HOLD_SECONDS + 10)
            holder.stdout.close()
        assert health_status == 503 and health["store"] == "busy"
        assert health_took < 1.0
        statuses = [result.status for result, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        slowest = max(took for _, took in results)
        assert slowest < 5.0, slowest
        print(f"held store: {statuses.count(503)} refused, slowest {slowest:.2f} s")
        # Free again: every refused callback, sent again as WeCom would, is answered once.
        for index, (result, _) in enumerate(results):
            if result.status == 503:
                again = wecom.send_text(f"held {index}", MsgId=f"13{index:02}")
                assert again.reply["Content"] == f"held {index}"
        assert service.health()[1]["store"] == "ok"


def test_unreadable_store_at_boot_keeps_the_service_up_and_recovers(tmp_path: Path):
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database" * 200)
    service = LiveService(KEYS | {"WECOM_STORE": f"sqlite:///{path}"}, workers=2)
    service.start(ready=(503,))  # up, and saying the store is unavailable
    try:
        wecom = one_shot_simulator(service.url)
        assert wecom.send_text("hi", MsgId="1401").status == 503
        assert service.health()[1]["status"] == "store unavailable"
        assert len(service.worker_pids()) == 2 and service.process.poll() is None
        path.unlink()
        wait_for(lambda: service.health()[0] == 200)
        assert wecom.send_text("hi", MsgId="1402").reply["Content"] == "hi"
    finally:
        service.stop()
        service.log.close()
