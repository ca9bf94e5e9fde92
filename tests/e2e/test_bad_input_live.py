"""Bad input on the real server (gunicorn, gevent workers): chunked framing is decoded by the
server, so the body cap must hold there too."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from app.wecom import MessageCrypto, compute_signature
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService

pytestmark = pytest.mark.e2e

LIMIT = 4096


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_STORE": f"sqlite:///{tmp_path_factory.mktemp('s') / 'state.db'}",
        "WECOM_MAX_BODY": str(LIMIT),
    }
    with LiveService(env, workers=1) as live:
        yield live


def signed_envelope(content: str, msg_id: str, stamp: int | None = None):
    plain = (
        f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>u</FromUserName>"
        f"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>{content}</Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(plain)
    timestamp = str(int(time.time()) if stamp is None else stamp)
    query = {
        "msg_signature": compute_signature(TOKEN, timestamp, "7", encrypted),
        "timestamp": timestamp,
        "nonce": "7",
    }
    return query, f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


def chunked(body: bytes, size: int = 1000):
    for start in range(0, len(body), size):  # a generator: requests sends it chunked
        yield body[start : start + size]


def test_chunked_body_over_the_cap_is_413(service):
    query, body = signed_envelope("hi", "8001")
    padded = body + b" " * (LIMIT * 3)
    response = requests.post(service.url + "/", params=query, data=chunked(padded), timeout=10)
    assert response.status_code == 413


def test_chunked_body_under_the_cap_is_answered(service):
    query, body = signed_envelope("chunked ok", "8002")
    response = requests.post(service.url + "/", params=query, data=chunked(body, 50), timeout=10)
    assert response.status_code == 200
    assert b"<Encrypt>" in response.content


def test_deep_json_and_replayed_timestamp_are_4xx_not_500(service):
    deep = b'{"encrypt": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # under the cap, over any depth
    query, _ = signed_envelope("x", "8003")
    assert requests.post(service.url + "/", params=query, data=deep, timeout=10).status_code == 400
    old_query, body = signed_envelope("replay", "8004", stamp=1_000_000_000)
    replay = requests.post(service.url + "/", params=old_query, data=body, timeout=10)
    assert replay.status_code == 403
    assert "Traceback" not in service.output()


def test_broken_chunked_framing_is_400_without_a_traceback(service):
    query, body = signed_envelope("x", "8005")
    target = "/?" + "&".join(f"{k}={v}" for k, v in query.items())
    request = (
        (
            f"POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        ).encode()
        + body[:10]
        + b"\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    assert "Traceback" not in service.output()
