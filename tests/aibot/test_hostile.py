"""Hostile and broken requests to the bot endpoint: always a 4xx and one log line, never a 500."""

from __future__ import annotations

import json
import random
import time

import pytest

from app.wecom import MessageCrypto, compute_signature
from tests.aibot.conftest import BOT_AES_KEY, BOT_TOKEN


def signed(plaintext: str | bytes, receive_id: str = "") -> tuple[dict[str, str], bytes]:
    encrypted = MessageCrypto(BOT_AES_KEY, receive_id).encrypt(plaintext)
    query = {
        "msg_signature": compute_signature(BOT_TOKEN, "1", "2", encrypted),
        "timestamp": "1",
        "nonce": "2",
    }
    return query, json.dumps({"encrypt": encrypted}).encode()


def post(client, query: dict[str, str], body: bytes):
    return client.post("/bot", query_string=query, data=body, content_type="application/json")


GOOD_QUERY = {"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"{" * 200_000, 400),
        (b'{"encrypt":' + b"[" * 100_000, 400),
        (b'{"encrypt": "abc"}', 403),  # signature
        (b"\x00\xff" * 100, 400),
        (b"x" * (300 * 1024), 413),
    ],
)
def test_broken_bodies(bot_app, body: bytes, status: int, caplog) -> None:
    response = post(bot_app.test_client(), GOOD_QUERY, body)
    assert response.status_code == status
    assert sum("rejected POST /bot" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("plaintext", "status"),
    [
        ("[" * 100_000, 400),
        ('{"msgtype": "text", "text": ' * 30 + "1" + "}" * 30, 400),
        ('{"msgtype": "text"}', 400),
        ("not json", 400),
        (b"\xff\xfe not utf-8", 400),
        ('{"msgtype": "stream", "stream": {"id": 7}}', 400),
    ],
)
def test_signed_but_broken_plaintext(bot_app, plaintext: str | bytes, status: int) -> None:
    query, body = signed(plaintext)
    assert post(bot_app.test_client(), query, body).status_code == status


def test_a_ciphertext_for_a_corp_id_is_forbidden(bot_app) -> None:
    query, body = signed('{"msgtype":"text","text":{"content":"x"}}', receive_id="wwcorp")
    assert post(bot_app.test_client(), query, body).status_code == 403


def test_missing_arguments(bot_app) -> None:
    client = bot_app.test_client()
    assert client.get("/bot").status_code == 400
    assert client.get("/bot", query_string={**GOOD_QUERY, "echostr": "abc"}).status_code == 403
    assert post(client, {"timestamp": "1"}, b'{"encrypt":"a"}').status_code == 400


def test_random_bodies_never_give_a_5xx(bot_app) -> None:
    client = bot_app.test_client()
    rng = random.Random(11)
    alphabet = b'{}[]":,encrypt 0123456789abc\\'
    for _ in range(60):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
        assert 400 <= post(client, GOOD_QUERY, body).status_code < 500


def test_the_xml_endpoint_refuses_a_deep_json_body_with_a_400(bot_app) -> None:
    # json.loads used to raise RecursionError here: a 500.
    query = GOOD_QUERY | {"timestamp": str(int(time.time()))}  # inside the timestamp window
    response = bot_app.test_client().post("/", query_string=query, data=b'{"a":' + b"[" * 50_000)
    assert response.status_code == 400
