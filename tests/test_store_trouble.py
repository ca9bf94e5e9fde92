"""The service when its SQLite store is in trouble: unreadable at start, held by another process,
deleted. Callbacks get 503 (WeCom retries) instead of hanging; /healthz says what is wrong."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from app import create_app
from app.devtools.simulator import Simulator
from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport
from tests.helpers import wait_for


def service(app_config, path):
    app = create_app(app_config | {"WECOM_STORE": f"sqlite:///{path}"})
    client = app.test_client()
    return app, client, Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(client))


@pytest.fixture
def stopped():
    apps = []
    yield apps.append
    for app in apps:
        app.extensions["wecom"].stop_background()


def test_unreadable_store_at_start_gives_503_then_recovers(app_config, tmp_path, caplog, stopped):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with caplog.at_level(logging.ERROR):
        app, client, wecom = service(app_config, path)  # starts: no SettingError
    stopped(app)
    assert wecom.send_text("hi", MsgId="1001").status == 503
    assert wecom.send_text("hi", MsgId="1002").status == 503
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json["status"] == "store unavailable"
    store_lines = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(store_lines) == 2  # one at start, one in the worker: not one per request

    path.unlink()  # the operator fixes it
    assert wecom.send_text("hi", MsgId="1003").reply["Content"] == "hi"
    assert client.get("/healthz").json["status"] == "ok"


def test_store_held_by_another_process(app_config, tmp_path, stopped):
    path = tmp_path / "state.db"
    app, client, wecom = service(app_config, path)
    stopped(app)
    assert wecom.send_text("warm up").status == 200
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json["status"] == "store busy"
        assert health.json["store"] == "busy"
        assert health.json["dead_letters"] == 0  # reads still work
        assert wecom.send_text("hi", MsgId="1101").status == 503  # refused: WeCom retries
    finally:
        other.execute("COMMIT")
        other.close()
    assert wecom.send_text("hi", MsgId="1101").reply["Content"] == "hi"
    assert client.get("/healthz").json["store"] == "ok"


def test_deleted_store_file_shows_on_healthz(app_config, tmp_path, stopped):
    path = tmp_path / "state.db"
    app, client, wecom = service(app_config, path)
    stopped(app)
    assert wecom.send_text("first", MsgId="1201").status == 200
    path.unlink()
    report = wait_for(lambda: (r := client.get("/healthz").json).get("store_file") and r, 5)
    assert "deleted at" in report["store_file"]
    assert report["status"] == "store file replaced"
    assert wecom.send_text("second", MsgId="1202").reply["Content"] == "second"
