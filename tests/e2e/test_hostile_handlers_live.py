"""A handler that holds the CPU past gunicorn's timeout, on real gunicorn gevent workers: the other
worker keeps answering, and the handler is started WECOM_HANDLER_ATTEMPTS times, then given up."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from app.infra.store import JobState, SqliteStore
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService, one_shot_simulator
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

RAISED = {"exit": "SystemExit", "interrupt": "KeyboardInterrupt", "base": "Unusual"}


def test_cpu_bound_handler_is_given_up_while_the_other_worker_answers(tmp_path: Path):
    store_path = tmp_path / "state.db"
    record = tmp_path / "runs.txt"
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_STORE": f"sqlite:///{store_path}",
        "WECOM_HANDLERS": "tests.handlers_hostile",
        "WECOM_REPLY_DEADLINE": "1",
        "WECOM_LEASE_SECONDS": "6",
        "WECOM_HANDLER_ATTEMPTS": "2",
        "WECOM_TEST_RECORD": str(record),
        "GUNICORN_TIMEOUT": "2",
    }
    with LiveService(env, workers=2) as service:
        wecom = one_shot_simulator(service.url)
        pids = sorted(service.worker_pids())
        # Under gevent too, whatever a handler raises is answered and recorded, and kills nothing.
        for number, text in enumerate(RAISED):
            assert wecom.send_text(text, MsgId=f"390{number}").body == b""
        with contextlib.closing(SqliteStore(store_path)) as store:
            for number, (text, raised) in enumerate(RAISED.items()):
                job = store.get_job(f"app:msg:390{number}")
                assert job.state == JobState.DEAD and raised in job.last_error, (text, job)
        assert sorted(service.worker_pids()) == pids
        threading.Thread(  # its worker is stopped mid-request: nobody waits for this answer
            target=lambda: _quietly(wecom.send_text, "spin 60", MsgId="4001"), daemon=True
        ).start()
        wait_for(lambda: record.exists() and "4001" in record.read_text())
        store = SqliteStore(store_path)
        slowest, answered = 0.0, 0
        started = time.monotonic()
        try:
            while time.monotonic() - started < 60:
                job = store.get_job("app:msg:4001")
                if job is not None and job.state == JobState.DEAD:
                    break
                result = wecom.send_text(f"ping {answered}")
                assert result.status == 200 and result.reply["Content"] == f"ping {answered}"
                slowest = max(slowest, result.elapsed)
                answered += 1
                time.sleep(0.02)  # pacing: a steady trickle of new callbacks, not a flood
            dead = store.get_job("app:msg:4001")
        finally:
            store.close()
        assert dead.state == JobState.DEAD, dead
        assert "started 2 times" in dead.last_error
        spins = [line for line in record.read_text().splitlines() if line.startswith("4001 ")]
        assert len(spins) == 2
        assert len({line.split()[1] for line in spins}) == 2  # a different worker each time
        print(f"{answered} callbacks answered meanwhile, slowest {slowest:.2f} s")
        assert slowest < 5.0
        assert service.process.poll() is None
        # Both runs were stopped by gunicorn's timeout, the takeover in a fresh worker included
        # (none is left spinning).
        wait_for(lambda: service.output().count("WORKER TIMEOUT") == 2)


def _quietly(call, *args, **kwargs) -> None:
    with contextlib.suppress(Exception):
        call(*args, **kwargs)
