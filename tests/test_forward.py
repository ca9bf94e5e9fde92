"""Forwarding to a business backend: a real HTTP backend on loopback, the guide's contract."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import create_app
from app.devtools.simulator import Simulator
from app.infra.store import JobState
from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport
from tests.helpers import wait_for


class Backend:
    """A business API whose next answers the test decides: (status, content type, body, held).
    A held answer waits until the test lets it go (``release``)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.answers: list[tuple[int, str, bytes, bool]] = []
        self.released = threading.Event()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                backend.received.append(json.loads(body.decode("utf-8")))
                status, content_type, answer, held = (
                    backend.answers.pop(0)
                    if backend.answers
                    else (200, "application/json", b'{"code": 200, "data": "ok"}', False)
                )
                if held:
                    backend.released.wait(30)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wecom"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def answer(self, status: int, content_type: str, body: bytes | str, held: bool = False):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.answers.append((status, content_type, data, held))


@pytest.fixture
def backend():
    server = Backend()
    server.thread.start()
    yield server
    server.released.set()
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


def test_backend_timeout_becomes_the_fallback_through_the_api_rules(app_config, backend):
    """The backend never answers: the reply deadline (0.2 s) comes before the forward timeout
    (0.5 s), so the callback is answered empty (a passive fallback would mean the deadline did
    not work), and the fallback then goes the API's way."""
    app = create_app(app_config | {"WECOM_REPLY_DEADLINE": 0.2, "WECOM_FORWARD_TIMEOUT": 0.5})
    try:
        transport = client_transport(app.test_client())
        wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=transport)
        backend.answer(200, "application/json", '{"code": 200, "data": "late"}', held=True)
        result = wecom.send_text("slow", MsgId="302")
        assert (result.status, result.body) == (200, b"")
        store = app.extensions["wecom"].store
        job = wait_for(lambda: (j := store.get_job("app:msg:302")).state != JobState.DEFERRED and j)
        # No secret in this app: the fallback answer could not be sent and is recorded as failed.
        assert job.state == JobState.DEAD
        assert "WECOM_SECRET" in job.last_error
    finally:
        app.extensions["wecom"].stop_background()


def test_unreachable_backend_becomes_the_fallback(app_config):
    app = create_app(app_config | {"WECOM_FORWARD_URL": "http://127.0.0.1:9/nothing"})
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))
    assert wecom.send_text("hi").reply["Content"] == "响应错误"
