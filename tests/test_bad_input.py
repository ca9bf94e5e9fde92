"""Hostile or odd input through the test client: deep JSON, chunked bodies over the cap, replayed
timestamps, odd but correctly signed shapes for the demo bot, and the arrival-time header."""

from __future__ import annotations

import io
import logging
import time

import pytest

from app import SettingError, create_app
from app.wecom import MessageCrypto, compute_signature
from tests.conftest import AES_KEY, CORP_ID, TOKEN

BLUEPRINT = "app.web.blueprint"


def signed(encrypted: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "msg_signature": compute_signature(TOKEN, stamp, "42", encrypted),
        "timestamp": stamp,
        "nonce": "42",
    }


def envelope(encrypted: str) -> bytes:
    return f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


def text_envelope(content: str = "你好", msg_id: str = "7000") -> tuple[str, bytes]:
    plain = (
        f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>u</FromUserName>"
        f"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>{content}</Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(plain)
    return encrypted, envelope(encrypted)


def rejections(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name in (BLUEPRINT, "app.callbacks")]


# -- parsers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_4xx_with_one_log_line(client, caplog, depth):
    body = b'{"encrypt": ' + b"[" * depth + b"]" * depth + b"}"
    with caplog.at_level(logging.WARNING):
        response = client.post("/", query_string=signed("x"), data=body)
    assert response.status_code == 400
    assert b"nested deeper than" in response.get_data()
    assert len(rejections(caplog)) == 1
    assert not [r for r in caplog.records if r.exc_info]


# -- body size, whatever the framing ------------------------------------------------------------


def test_body_without_length_over_the_cap_is_413(client, app):
    """As a chunked body arrives from a server that decodes chunking (wsgi.input_terminated):
    no Content-Length, only the stream. A valid envelope padded past the cap is refused, not cut
    to the cap and accepted."""
    limit = app.extensions["wecom"].settings.max_body
    encrypted, body = text_envelope()
    padded = body + b" " * (limit + 10 - len(body))
    response = client.post(
        "/",
        query_string=signed(encrypted),
        input_stream=io.BytesIO(padded),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"


def test_body_without_length_under_the_cap_is_read_whole(client):
    encrypted, body = text_envelope()
    response = client.post(
        "/",
        query_string=signed(encrypted),
        input_stream=io.BytesIO(body + b" " * 1000),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200


# -- timestamp window ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-3601, 3601, -(10**9)])
def test_timestamp_outside_the_window_is_refused_with_one_log_line(client, caplog, offset):
    encrypted, body = text_envelope(msg_id="7100")
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/", query_string=signed(encrypted, int(time.time()) + offset), data=body
        )
    assert response.status_code == 403
    (line,) = rejections(caplog)
    assert "WECOM_TIMESTAMP_WINDOW" in line


def test_timestamp_inside_the_window_is_accepted(client):
    encrypted, body = text_envelope(msg_id="7101")
    response = client.post("/", query_string=signed(encrypted, int(time.time()) - 3500), data=body)
    assert response.status_code == 200


@pytest.mark.parametrize("stamp", ["abc", "1" * 40, "-5", "1.5"])
def test_timestamp_that_is_no_number_is_400(client, stamp):
    encrypted, body = text_envelope()
    query = signed(encrypted) | {"timestamp": stamp}
    assert client.post("/", query_string=query, data=body).status_code == 400


def test_window_zero_disables_the_check(app_config):
    client = create_app(app_config | {"WECOM_TIMESTAMP_WINDOW": "0"}).test_client()
    encrypted, body = text_envelope(msg_id="7102")
    response = client.post("/", query_string=signed(encrypted, 1_000_000_000), data=body)
    assert response.status_code == 200


def test_window_longer_than_the_dedup_retention_stops_start_up(app_config):
    with pytest.raises(SettingError) as info:
        create_app(app_config | {"WECOM_TIMESTAMP_WINDOW": str(24 * 3600 + 1)})
    assert info.value.setting == "WECOM_TIMESTAMP_WINDOW"


# -- odd but correctly signed shapes reach the demo bot ------------------------------------------

EVENT = "<MsgType>event</MsgType><Event>"
HEAD = f"<ToUserName>{CORP_ID}</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"


@pytest.mark.parametrize(
    ("inner", "answer"),
    [
        ("<MsgType>text</MsgType><MsgType>image</MsgType><Content>hi</Content>", "收到消息"),
        ("<MsgType><x>1</x></MsgType>", "收到消息"),
        ("<MsgType>text</MsgType><Content><a>x</a></Content>", None),
        ("<MsgType>text</MsgType><Content>a</Content><Content>b</Content>", None),
        (f"{EVENT}scancode_waitmsg</Event><ScanCodeInfo>t</ScanCodeInfo>", "扫码结果："),
        (f"{EVENT}click</Event><EventKey><k>1</k></EventKey>", "你点击了菜单："),
        (f"{EVENT}click</Event><Event>subscribe</Event>", None),
    ],
)  # fmt: skip
def test_demo_bot_copes_with_odd_shapes(wecom, caplog, inner, answer):
    result = wecom.send_xml(f"<xml>{HEAD}{inner}<MsgId>{abs(hash(inner))}</MsgId></xml>")
    assert result.status == 200
    assert (result.reply or {}).get("Content") == answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the budget counts from the earliest trusted arrival -----------------------------------------


@pytest.fixture
def slow_app_config(app_config):
    return app_config | {"WECOM_HANDLERS": "tests.handlers_slow", "WECOM_REPLY_DEADLINE": 1.0}


def post_queued(client, queued: float, msg_id: str):
    encrypted, body = text_envelope("sleep 0.4", msg_id)
    return client.post(
        "/",
        query_string=signed(encrypted),
        data=body,
        headers={"X-Request-Start": f"t={time.time() - queued:.3f}"},
    )


def test_time_queued_behind_a_trusted_proxy_counts_against_the_budget(slow_app_config):
    client = create_app(slow_app_config).test_client()
    # Queued 0.8 s at nginx: 0.2 s of the 1 s budget are left, the 0.4 s handler misses it.
    assert post_queued(client, 0.8, "7201").get_data() == b""
    # Not queued: the handler's answer is the passive reply.
    assert post_queued(client, 0.0, "7202").get_data() != b""


def test_arrival_header_from_an_untrusted_address_is_ignored(slow_app_config):
    config = slow_app_config | {"FORWARDED_ALLOW_IPS": "10.1.2.3"}
    client = create_app(config).test_client()  # the test client connects from 127.0.0.1
    assert post_queued(client, 0.8, "7203").get_data() != b""
