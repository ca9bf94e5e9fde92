"""Metrics, the one line per callback, and the console's history, in one process."""

from __future__ import annotations

import json
import logging
import time

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.devtools.simulator import Simulator
from app.infra.metrics import CALLBACKS, DELIVERIES, CallbackNote
from app.infra.store import JobState, MemoryStore
from app.jobs import kf_stats
from app.web.console import charts
from app.web.console.history import History, minute_key
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN, client_transport
from tests.helpers import wait_for

ADMIN = "observe-admin-token-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def callbacks(outcome: str, msgtype: str = "text", reason: str = "") -> float:
    return sample(
        "wecom_callbacks_total",
        endpoint="app",
        kind="app",
        msgtype=msgtype,
        outcome=outcome,
        reason=reason,
    )


@pytest.fixture
def broken(tmp_path, monkeypatch):
    flag = tmp_path / "broken"
    flag.touch()
    monkeypatch.setenv("WECOM_TEST_BROKEN", str(flag))
    return flag


@pytest.fixture
def app(broken):
    config = BASE_CONFIG | {
        "WECOM_ADMIN_TOKEN": ADMIN,
        "WECOM_HANDLERS": "tests.handlers_console",
        "WECOM_REPLY_DEADLINE": "0.2",
    }
    app = create_app(config)
    yield app
    app.extensions["wecom_history"].stop()
    app.extensions["wecom"].stop_background()


def test_each_outcome_is_counted_timed_and_logged_once(app, client, wecom, caplog):
    caplog.set_level(logging.INFO, logger="app")
    before = {o: callbacks(o) for o in ("passive", "deferred", "retry", "failed")}
    refused_before = callbacks("refused", "-", "signature")
    doorbells_before = callbacks("doorbell", "event")
    answered_before = sample("wecom_callback_answer_seconds_count", endpoint="app")
    late_before = sample("wecom_late_deliveries_total", kind="app", result="dead", errcode="none")

    assert wecom.send_text("hello", MsgId="501").reply["Content"] == "hello"
    fields = wecom.message_fields("text", Content="sleep 0.5", MsgId="502")
    assert wecom.send_fields(fields).body == b""  # deferred
    assert wecom.send_fields(fields).body == b""  # WeCom's retry, recognised
    assert wecom.send_text("flaky", MsgId="503").body == b""  # the handler raised
    forged = Simulator("/", "WrongToken1", AES_KEY, CORP_ID, transport=client_transport(client))
    assert forged.send_text("hi", MsgId="504").status == 403
    bell = wecom.send_event("kf_msg_or_event", Token="t", OpenKfId="wkOBSERVE0001")
    assert bell.status == 200

    assert callbacks("passive") == before["passive"] + 1
    assert callbacks("deferred") == before["deferred"] + 1
    assert callbacks("retry") == before["retry"] + 1
    assert callbacks("failed") == before["failed"] + 1
    assert callbacks("refused", "-", "signature") == refused_before + 1
    assert callbacks("doorbell", "event") == doorbells_before + 1
    assert sample("wecom_callback_answer_seconds_count", endpoint="app") == answered_before + 5
    # The deferred answer cannot be sent (no secret configured): a dead delivery, no errcode.
    wait_for(
        lambda: (
            sample("wecom_late_deliveries_total", kind="app", result="dead", errcode="none")
            == late_before + 1
        ),
        timeout=5,
    )

    lines = [r for r in caplog.records if r.name == "app.callbacks"]
    assert [r.outcome for r in lines] == [
        "passive",
        "deferred",
        "retry",
        "failed",
        "refused",
        "doorbell",
    ]
    messages = [r.getMessage() for r in lines]
    assert messages[0].startswith("callback app text MsgId=501 passive ")
    assert messages[0].endswith(" ms")
    assert "refused (signature: " in messages[4] and "WeCom code -40001" in messages[4]
    assert messages[5].startswith("callback app event Event=kf_msg_or_event doorbell")
    assert not any("rejected POST" in r.getMessage() for r in caplog.records)  # one line only
    assert all("hello" not in m for m in messages)


def test_store_operations_are_timed_by_name():
    store = MemoryStore()
    before = sample("wecom_store_operation_seconds_count", operation="claim_job")
    store.claim_job("k", "app", "{}", "me", time.time() + 30, time.time())
    assert sample("wecom_store_operation_seconds_count", operation="claim_job") == before + 1
    assert store.count_jobs(JobState.RUNNING) == 1
    assert store.count_jobs(JobState.RUNNING, limit=0) == 0


def test_sqlite_counts_jobs_up_to_the_limit(tmp_path):
    from app.infra.store import SqliteStore

    store = SqliteStore(tmp_path / "s.db")
    now = time.time()
    for index in range(5):
        store.claim_job(f"k{index}", "app", "{}", "me", now + 30, now)
    store.update_job("k0", expect_states=(JobState.RUNNING,), state=JobState.DEAD, now=now)
    assert store.count_jobs(JobState.RUNNING) == 4
    assert store.count_jobs(JobState.RUNNING, limit=3) == 3
    assert store.count_jobs(JobState.DEAD) == 1
    store.close()


def test_history_adds_this_process_counts_to_the_minute_another_worker_wrote():
    store = MemoryStore()
    clock = time.time
    history = History(lambda: store, clock=clock)
    minute = int(clock() // 60)
    other_worker = {"outcome:passive": 7, "delivery:dead:81013": 1}
    store.set_value(minute_key(minute), json.dumps(other_worker))
    CALLBACKS.labels("app", "app", "text", "passive", "").inc(3)
    DELIVERIES.labels("app", "dead", "81013").inc()
    note = CallbackNote("app", "app", time.monotonic(), "text", "MsgId=9", content=None)
    history.record(note, 1.5)
    assert history.flush() is True
    merged = json.loads(store.get_value(minute_key(int(clock() // 60)), clock()))
    if int(clock() // 60) == minute:  # the minute may have turned during the test
        assert merged["outcome:passive"] == 10
        assert merged["delivery:dead:81013"] == 2
    assert history.flush() is False  # nothing new
    recent = history.recent()
    assert recent[0]["id"] == "MsgId=9" and "content" not in recent[0]
    history.stop()


def test_kf_stats_record_lag_and_catch_up():
    store = MemoryStore()
    now = 1_000_000.0
    items = [{"msgid": "a", "send_time": now - 30}, {"msgid": "b", "send_time": now - 12}]
    kf_stats.record_page(store, "wkA", items, has_more=0, now=now)
    assert kf_stats.read(store, "wkA", now).lag == 12.0
    kf_stats.record_page(store, "wkA", [], has_more=1, now=now + 5)
    assert kf_stats.read(store, "wkA", now + 5).lag == 12.0  # still working through it
    kf_stats.record_page(store, "wkA", [], has_more=0, now=now + 6)
    stats = kf_stats.read(store, "wkA", now + 6)
    assert (stats.lag, stats.last_pull) == (0.0, now + 6)


def test_answer_buckets_from_cumulative_counts_and_the_window_mark():
    cumulative = {"0.05": 5, "0.1": 5, "4.5": 7, "5.0": 8, "10.0": 9, "+Inf": 10}
    buckets = charts.buckets_from(cumulative)
    assert [b.count for b in buckets] == [5, 0, 0, 0, 0, 0, 0, 0, 2, 1, 1, 1]
    assert [b.late for b in buckets][-3:] == [False, True, True]
    svg = str(charts.answer_times(buckets, 4.0))
    assert "5 s window" in svg and "deadline 4 s" in svg
    assert "style=" not in svg and "<script" not in svg
    assert svg.count('class="late"') == 2


def test_console_overview_counts_the_callbacks(app, client, wecom):
    form = client.get("/console/login").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    client.post("/console/login", data={"csrf": csrf, "token": ADMIN})
    for index in range(4):
        wecom.send_text(f"hi {index}", MsgId=str(600 + index))
    page = client.get("/console/").text
    total = int(page.split('id="total-callbacks">')[1].split("<")[0])
    assert total >= 4
    recent = client.get("/console/recent").text
    assert "MsgId=603" in recent and "hi 3" not in recent  # content hidden by default


def test_content_shows_only_when_allowed(broken):
    config = BASE_CONFIG | {
        "WECOM_ADMIN_TOKEN": ADMIN,
        "WECOM_HANDLERS": "tests.handlers_console",
        "WECOM_CONSOLE_SHOW_CONTENT": "1",
    }
    app = create_app(config)
    client = app.test_client()
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(client))
    form = client.get("/console/login").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    client.post("/console/login", data={"csrf": csrf, "token": ADMIN})
    wecom.send_text("flaky", MsgId="701")
    assert "flaky" in client.get("/console/recent").text
    assert "flaky" in client.get("/console/job?key=app:msg:701").text
    app.extensions["wecom_history"].stop()
    app.extensions["wecom"].stop_background()


def test_job_page_hides_content_by_default(app, client, wecom):
    form = client.get("/console/login").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    client.post("/console/login", data={"csrf": csrf, "token": ADMIN})
    wecom.send_text("flaky", MsgId="702")
    page = client.get("/console/job?key=app:msg:702").text
    assert "dead" in page and "MsgId" in page and "702" in page
    assert "flaky" not in page
    dead = client.get("/console/dead").text
    assert "app:msg:702" in dead and "handler raised RuntimeError" in dead


def test_scrape_reads_dead_letters_pending_work_and_kf_lag_from_the_store(app):
    from app.jobs.kf_puller import ACCOUNTS_KEY
    from app.web.metrics_endpoint import exposition

    service = app.extensions["wecom"]
    store = service.store
    now = time.time()
    store.claim_job("app:msg:1", "app", "{}", "w", now + 30, now - 40)
    store.claim_job("app:msg:2", "app", "{}", "w", now + 30, now)
    store.update_job("app:msg:2", expect_states=(JobState.RUNNING,), state=JobState.DEAD, now=now)
    store.set_value(ACCOUNTS_KEY, json.dumps(["wkA"]))
    kf_stats.record_page(store, "wkA", [{"msgid": "m", "send_time": now - 90}], 0, now)
    text = exposition(service).decode()
    assert "wecom_dead_letters 1.0" in text
    assert 'wecom_pending_jobs{state="running"} 1.0' in text
    age = float(text.split('wecom_pending_oldest_age_seconds{state="running"} ')[1].split()[0])
    assert age >= 40
    lag = float(text.split('wecom_kf_cursor_lag_seconds{account="wkA"} ')[1].split()[0])
    assert 89 <= lag <= 91
    assert "wecom_store_up 1.0" in text
