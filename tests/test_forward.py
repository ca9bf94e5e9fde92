"""Forwarding to a business backend: a real HTTP backend on loopback, the guide's contract."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.infra.store import JobState


class Backend:
    """A business API whose next answers the test decides: (status, content type, body, delay)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.answers: list[tuple[int, str, bytes, float]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                backend.received.append(json.loads(body.decode("utf-8")))
                status, content_type, answer, delay = (
                    backend.answers.pop(0)
                    if backend.answers
                    else (200, "application/json", b'{"code": 200, "data": "ok"}', 0.0)
                )
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wecom"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, status: int, content_type: str, body: bytes | str, delay: float = 0.0):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.answers.append((status, content_type, data, delay))


@pytest.fixture
def backend():
    server = Backend()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def app_config(app_config, backend):
    return app_config | {
        "WECOM_FORWARD_URL": backend.url,
        "WECOM_FORWARD_TIMEOUT": 2,
        "WECOM_REPLY_DEADLINE": 1.0,
    }


def test_message_is_posted_with_wecom_field_names_and_data_becomes_the_reply(wecom, backend):
    backend.answer(200, "application/json", json.dumps({"code": 200, "data": "订单已发货"}))
    result = wecom.send_text("查订单", MsgId="300", FromUserName="wangwu")
    assert result.reply["Content"] == "订单已发货"
    (sent,) = backend.received
    assert sent["MsgType"] == "text"
    assert sent["Content"] == "查订单"
    assert sent["MsgId"] == "300"
    assert sent["FromUserName"] == "wangwu"
    assert {"ToUserName", "CreateTime", "AgentID"} <= set(sent)


def test_plain_text_body_becomes_the_reply(wecom, backend):
    backend.answer(200, "text/plain; charset=utf-8", "纯文本回答")
    assert wecom.send_text("hi").reply["Content"] == "纯文本回答"


def test_empty_data_means_no_reply(wecom, backend):
    backend.answer(200, "application/json", '{"code": 200, "data": ""}')
    result = wecom.send_text("hi")
    assert result.status == 200 and result.body == b""


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (500, "text/plain", "boom"),
        (404, "text/html", "<h1>nope</h1>"),
        (200, "application/json", '{"code": 500, "data": "x"}'),
        (200, "application/json", "{not json"),
        (200, "application/octet-stream", b"\x00\x01"),
    ],
)
def test_bad_backend_answers_become_the_fallback_and_a_log_line(
    wecom, backend, caplog, status, content_type, body
):
    backend.answer(status, content_type, body)
    assert wecom.send_text("hi", MsgId="301").reply["Content"] == "响应错误"
    assert "301" in caplog.text


def test_backend_timeout_becomes_the_fallback_through_the_api_rules(app, wecom, backend):
    backend.answer(200, "application/json", '{"code": 200, "data": "late"}', delay=3.0)
    started = time.monotonic()
    result = wecom.send_text("slow", MsgId="302")
    assert result.body == b""  # the deadline (1 s) came before the backend's timeout (2 s)
    assert time.monotonic() - started < 1.5
    store = app.extensions["wecom"].store
    deadline = time.monotonic() + 5
    while store.get_job("app:msg:302").state == JobState.DEFERRED and time.monotonic() < deadline:
        time.sleep(0.05)
    job = store.get_job("app:msg:302")
    # No secret in this app: the fallback answer could not be sent and is recorded as failed.
    assert job.state == JobState.DEAD
    assert "WECOM_SECRET" in job.last_error


def test_unreachable_backend_becomes_the_fallback(app_config):
    from app import create_app
    from app.devtools.simulator import Simulator
    from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport

    app = create_app(app_config | {"WECOM_FORWARD_URL": "http://127.0.0.1:9/nothing"})
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))
    assert wecom.send_text("hi").reply["Content"] == "响应错误"
