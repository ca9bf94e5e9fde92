"""Forwarding against a hostile or broken backend: the whole answer is bounded in time and size,
redirects are not followed, and neither credentials, query strings nor the backend's answer
reach a log line."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FALLBACK = "响应错误"


class Backend:
    """A backend whose behaviour for each path the test picks (see ``do_POST``)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                backend.hits.append(path)
                # The service may give up on an answer halfway, as it should.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(self, "answer_" + path.strip("/").replace("-", "_"))()

            def answer_trickle(self) -> None:  # 1 byte every 0.3 s, 4 s in all
                self._head("text/plain", length=14)
                for _ in range(14):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)

            def answer_redirect(self) -> None:
                self.send_response(302)
                self.send_header("Location", "/internal")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def answer_internal(self) -> None:
                self._head("text/plain", length=15)
                self.wfile.write(b"internal secret")

            def answer_big(self) -> None:  # declared too big
                self._head("text/plain", length=10_000)
                self.wfile.write(b"y" * 10_000)

            def answer_big_chunked(self) -> None:  # too big, but nothing says so up front
                self._head("text/plain", chunked=True)
                for _ in range(10):
                    self.wfile.write(b"400\r\n" + b"z" * 1024 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def answer_fail(self) -> None:
                body = b'{"code": 500, "data": "SECRETBODY"}'
                self._head("application/json", length=len(body), status=500)
                self.wfile.write(body)

            def answer_badcode(self) -> None:
                body = b'{"code": "SECRETBODY", "data": "x"}'
                self._head("application/json", length=len(body))
                self.wfile.write(body)

            def _head(self, kind: str, length: int = 0, chunked=False, status=200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, secret_parts: bool = False) -> str:
        if secret_parts:
            host = self.base.removeprefix("http://")
            return f"http://user:PASSWORD1@{host}/{path}?token=QUERYSECRET"
        return f"{self.base}/{path}"


@pytest.fixture(scope="module")
def backend():
    server = Backend()
    yield server
    server.server.shutdown()
    server.server.server_close()


def forwarding_wecom(app_config, url: str, **settings):
    from app import create_app
    from app.devtools.simulator import Simulator
    from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport

    config = app_config | {
        "WECOM_FORWARD_URL": url,
        "WECOM_FORWARD_TIMEOUT": 1,
        "WECOM_REPLY_DEADLINE": 3,
        "WECOM_FORWARD_MAX_BYTES": 4096,
    }
    app = create_app(config | settings)
    return Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))


def test_a_trickling_answer_is_cut_off_at_the_forward_timeout(app_config, backend, caplog):
    wecom = forwarding_wecom(app_config, backend.url("trickle"))
    with caplog.at_level(logging.WARNING, logger="app.routing.forward"):
        result = wecom.send_text("hi", MsgId="601")
    # The fallback is the passive reply: the forward gave up before the 3 s reply deadline.
    assert result.reply["Content"] == FALLBACK
    assert "forward of 601 to the backend failed: no complete answer within 1 s" in caplog.text


def test_redirects_are_not_followed(app_config, backend, caplog):
    wecom = forwarding_wecom(app_config, backend.url("redirect"))
    hits_before = len(backend.hits)
    assert wecom.send_text("hi", MsgId="602").reply["Content"] == FALLBACK
    assert backend.hits[hits_before:] == ["/redirect"]
    assert "backend answered HTTP 302 for 602" in caplog.text


@pytest.mark.parametrize("path", ["big", "big-chunked"])
def test_an_answer_over_the_size_cap_becomes_the_fallback(app_config, backend, caplog, path):
    wecom = forwarding_wecom(app_config, backend.url(path))
    with caplog.at_level(logging.WARNING, logger="app.routing.forward"):
        assert wecom.send_text("hi", MsgId="603").reply["Content"] == FALLBACK
    lines = [r.getMessage() for r in caplog.records if r.name == "app.routing.forward"]
    assert lines == [
        "forward of 603 to the backend failed: the answer is larger than 4096 bytes "
        "(WECOM_FORWARD_MAX_BYTES)"
    ]


@pytest.mark.parametrize("path", ["fail", "badcode", "trickle", "nowhere"])
def test_no_credentials_query_or_answer_in_any_log_line(app_config, backend, caplog, path):
    url = backend.url(path, secret_parts=True)
    if path == "nowhere":  # nothing listens there: the connection error names the URL
        url = "http://user:PASSWORD1@127.0.0.1:9/x?token=QUERYSECRET"
    with caplog.at_level(logging.DEBUG, logger="app"):
        wecom = forwarding_wecom(app_config, url)
        assert wecom.send_text("hi", MsgId="604").reply["Content"] == FALLBACK
    ours = [r for r in caplog.records if r.name.startswith("app")]  # the service's own lines
    logged = "".join(f"{r.getMessage()} {r.exc_text or ''}" for r in ours)
    assert "604" in logged
    for secret in ("PASSWORD1", "QUERYSECRET", "SECRETBODY", "token="):
        assert secret not in logged
