"""``flask simulate bot``: the demo bot over real HTTP (a threaded server in this process)."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.handlers import bot_demo


@pytest.fixture
def served(monkeypatch):
    monkeypatch.setattr(bot_demo, "PIECE_SECONDS", 0.05)
    app = create_app({"WECOM_STORE": "memory://", "WECOM_LOG_LEVEL": "WARNING"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.extensions["wecom"].stop_background()


def run(app, url: str, *args: str):
    result = app.test_cli_runner().invoke(args=["simulate", "--url", url, "bot", *args])
    assert result.exit_code == 0, result.output
    return result


def test_text_follows_the_stream_until_it_finishes(served) -> None:
    app, url = served
    result = run(app, url, "text", "你好", "--interval", "0.1")
    assert result.stdout.strip() == "你好,这是测试机器人"
    assert "(finished after" in result.stderr


def test_enter_verify_and_card(served) -> None:
    app, url = served
    assert run(app, url, "enter").stdout.strip() == bot_demo.WELCOME
    assert "URL verified" in run(app, url, "verify").stdout
    assert "你点击了：DEMO_YES" in run(app, url, "card", "DEMO_YES").stdout
