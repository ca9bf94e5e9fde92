"""Every worker SIGKILLed mid-handler: gunicorn's master releases their leases at once
(child_exit), so the late answer goes out a handler's run after the kill, not a lease later."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.store import JobState, SqliteStore
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService, one_shot_simulator
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

SECRET = "e2e-crash-secret"
HANDLER_SECONDS = 2.0


def test_late_answer_after_all_workers_are_killed_arrives_within_s_plus_5(tmp_path: Path):
    store_path = tmp_path / "state.db"
    record = tmp_path / "runs.txt"
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as fake:
        env = {
            "WECOM_TOKEN": TOKEN,
            "WECOM_AES_KEY": AES_KEY,
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_SECRET": SECRET,
            "WECOM_AGENT_ID": "1000002",
            "WECOM_API_BASE": fake.base_url,
            "WECOM_STORE": f"sqlite:///{store_path}",
            "WECOM_HANDLERS": "tests.handlers_slow",
            "WECOM_REPLY_DEADLINE": "1",
            "WECOM_LEASE_SECONDS": "30",  # the default: far longer than the wait allowed below
            "WECOM_TEST_RECORD": str(record),
        }
        with LiveService(env, workers=2) as service:
            wecom = one_shot_simulator(service.url)
            send = lambda: wecom.send_text(  # noqa: E731
                f"sleep {HANDLER_SECONDS:g}", MsgId="5001", FromUserName="crash"
            )
            threading.Thread(target=lambda: _quietly(send), daemon=True).start()
            wait_for(lambda: record.exists() and "5001" in record.read_text())
            killed_at = time.monotonic()
            for pid in service.worker_pids():
                os.kill(pid, signal.SIGKILL)
            sent = wait_for(lambda: fake.sent("message/send"), timeout=40, interval=0.05)
            took = time.monotonic() - killed_at
            store = SqliteStore(store_path)
            try:
                wait_for(lambda: store.get_job("app:msg:5001").state == JobState.DONE)
            finally:
                store.close()
            assert [m["body"]["text"]["content"] for m in fake.sent("message/send")] == [
                f"slept {HANDLER_SECONDS:g}"
            ]
            assert sent[0]["body"]["touser"] == "crash"
            assert "other workers take them now" in service.output()
            print(f"late answer {took:.2f} s after the kill (handler {HANDLER_SECONDS:g} s)")
            assert took < HANDLER_SECONDS + 5


def _quietly(call) -> None:
    with contextlib.suppress(Exception):
        call()
