"""The callback blueprint through app.test_client(): good calls and every kind of bad input."""

from __future__ import annotations

import logging
import time

import pytest

from app.devtools.simulator import build_message_xml
from app.infra.store import JobState
from app.wecom import MessageCrypto, compute_signature
from tests.conftest import AES_KEY, CORP_ID, TOKEN


def signed(encrypted: str, token: str = TOKEN) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), "1372623149"
    return {
        "msg_signature": compute_signature(token, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }


def envelope(encrypted: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()


def text_xml(content: str = "你好") -> str:
    return build_message_xml(
        {
            "ToUserName": CORP_ID,
            "FromUserName": "zhangsan",
            "CreateTime": "1700000000",
            "MsgType": "text",
            "Content": content,
            "MsgId": "7000000000000000001",
            "AgentID": "1000002",
        }
    )


# -- URL verification ----------------------------------------------------------------------------


def test_verification_echoes_plaintext_exactly(wecom):
    assert wecom.verify_url()


def test_verification_with_plus_and_slash_in_echostr(client):
    crypto = MessageCrypto(AES_KEY, CORP_ID)
    # Find a ciphertext with both '+' and '/' so the percent-decoding is really exercised.
    for number in range(1000):
        echostr = crypto.encrypt(str(10**18 + number))
        if "+" in echostr and "/" in echostr:
            break
    query = signed(echostr) | {"echostr": echostr}
    response = client.get("/", query_string=query)
    assert response.status_code == 200
    assert response.get_data() == str(10**18 + number).encode()
    assert response.mimetype == "text/plain"


def test_verification_survives_a_proxy_turning_plus_into_space(client):
    crypto = MessageCrypto(AES_KEY, CORP_ID)
    for number in range(1000):
        echostr = crypto.encrypt(str(number))
        if "+" in echostr:
            break
    query = signed(echostr)
    raw = "&".join(f"{k}={v}" for k, v in query.items()) + "&echostr=" + echostr
    response = client.get("/?" + raw)  # '+' unescaped: form decoding turns it into a space
    assert response.status_code == 200
    assert response.get_data() == str(number).encode()


def test_verification_wrong_signature_is_403_with_log_line(client, caplog):
    crypto = MessageCrypto(AES_KEY, CORP_ID)
    echostr = crypto.encrypt("123")
    query = signed(echostr, token="wrongtoken") | {"echostr": echostr}
    with caplog.at_level(logging.WARNING, logger="app.web.blueprint"):
        response = client.get("/", query_string=query)
    assert response.status_code == 403
    assert b"signature" in response.get_data()
    assert "-40001" in caplog.text


@pytest.mark.parametrize("drop", ["msg_signature", "timestamp", "nonce", "echostr"])
def test_verification_missing_parameter_is_400(client, drop):
    echostr = MessageCrypto(AES_KEY, CORP_ID).encrypt("1")
    query = signed(echostr) | {"echostr": echostr}
    del query[drop]
    response = client.get("/", query_string=query)
    assert response.status_code == 400
    assert drop.encode() in response.get_data()


def test_verification_wrong_receiveid_is_403(client):
    echostr = MessageCrypto(AES_KEY, "wwsomeothercorp").encrypt("1")
    response = client.get("/", query_string=signed(echostr) | {"echostr": echostr})
    assert response.status_code == 403
    assert b"receiveid" in response.get_data()


# -- messages ------------------------------------------------------------------------------------


def test_text_message_gets_encrypted_passive_reply(wecom):
    result = wecom.send_text("你好")
    assert result.status == 200
    assert result.reply["MsgType"] == "text"
    assert result.reply["Content"] == "你好,这是测试机器人"
    assert result.reply["ToUserName"] == "zhangsan"
    assert result.reply["FromUserName"] == CORP_ID


def test_other_text_is_echoed_exactly(wecom):
    content = "a < b && c ]]> d 😀 " + "长" * 300
    assert wecom.send_text(content).reply["Content"] == content


def test_event_without_reply_gets_empty_200(wecom):
    result = wecom.send_event(
        "change_contact", FromUserName="sys", ChangeType="delete_user", UserID="lisi"
    )
    assert result.status == 200
    assert result.body == b""
    assert result.reply is None


def test_wrong_signature_on_post_is_403(client):
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(text_xml())
    response = client.post(
        "/", query_string=signed(encrypted, token="other"), data=envelope(encrypted)
    )
    assert response.status_code == 403


@pytest.mark.parametrize("drop", ["msg_signature", "timestamp", "nonce"])
def test_post_missing_parameter_is_400(client, drop):
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(text_xml())
    query = signed(encrypted)
    del query[drop]
    assert client.post("/", query_string=query, data=envelope(encrypted)).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><ToUserName>x</ToUserName></xml>",  # no Encrypt
        b"<xml><Encrypt>",  # truncated
        "<xml><Encrypt>é</Encrypt>".encode("latin-1"),
    ],
)
def test_broken_body_is_400(client, body):
    query = signed("irrelevant")
    response = client.post("/", query_string=query, data=body)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "encrypted",
    ["!!!not base64!!!", "QUJD", "A" * 44],  # bad base64, 3 bytes, 33 bytes: not blocks of 16
)
def test_undecryptable_encrypt_is_400(client, encrypted):
    response = client.post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 400


def test_ciphertext_under_another_key_is_400(client):
    other = MessageCrypto("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", CORP_ID)
    encrypted = other.encrypt(text_xml())
    response = client.post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 400


def test_wrong_receiveid_on_post_is_403(client, caplog):
    encrypted = MessageCrypto(AES_KEY, "wwanothercorp").encrypt(text_xml())
    response = client.post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 403
    assert "-40005" in caplog.text


def test_oversized_body_is_413(client, app):
    limit = app.extensions["wecom"].settings.max_body
    response = client.post("/", query_string=signed("x"), data=b"<xml>" + b"a" * limit + b"</xml>")
    assert response.status_code == 413


def test_decrypted_message_that_is_not_xml_is_400(client):
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt("this is not xml")
    response = client.post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 400


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><Encrypt>&lol9;</Encrypt><Content>&lol9;</Content></xml>"""


def test_xml_bomb_in_envelope_is_rejected_quickly(client):
    """Refused at its DOCTYPE (tests/wecom/test_xmlsafe.py): expanding it would not finish."""
    response = client.post("/", query_string=signed("x"), data=BILLION_LAUGHS.encode())
    assert response.status_code == 400


def test_xml_bomb_inside_the_encrypted_message_is_rejected_quickly(client):
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(BILLION_LAUGHS)
    response = client.post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 400


def test_handler_that_raises_is_logged_with_msgid_and_answered_empty(app_config, caplog):
    from app import create_app

    app = create_app(app_config | {"WECOM_HANDLERS": "tests.handlers_raising"})
    encrypted = MessageCrypto(AES_KEY, CORP_ID).encrypt(text_xml("boom"))
    response = app.test_client().post("/", query_string=signed(encrypted), data=envelope(encrypted))
    assert response.status_code == 200
    assert response.get_data() == b""
    assert "7000000000000000001" in caplog.text
    assert "RuntimeError" in caplog.text


def test_unknown_path_and_method(client):
    assert client.get("/nowhere").status_code == 404
    assert client.put("/").status_code == 405


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["endpoints"] == ["app"]
    assert response.json["dead_letters"] == 0


def test_healthz_counts_dead_letters(app, client, wecom):
    app.extensions["wecom"].store.claim_job("app:msg:1", "app", "{}", "me", 0.0, 0.0)
    app.extensions["wecom"].store.update_job(
        "app:msg:1", expect_states=(JobState.RUNNING,), state=JobState.DEAD, now=1.0
    )
    assert client.get("/healthz").json["dead_letters"] == 1


def test_healthz_is_503_when_the_store_fails(app, client, monkeypatch):
    store = app.extensions["wecom"].store

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(store, "list_jobs", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "store unavailable"


def test_mount_path_is_configurable(app_config):
    from app import create_app
    from app.devtools.simulator import Simulator
    from tests.conftest import client_transport

    app = create_app(app_config | {"WECOM_PATH": "/wecom/callback/"})
    client = app.test_client()
    wecom = Simulator(
        "/wecom/callback", TOKEN, AES_KEY, CORP_ID, transport=client_transport(client)
    )
    assert wecom.send_text("你好").reply["Content"] == "你好,这是测试机器人"
    assert client.post("/").status_code == 404


def test_store_failure_is_503_so_wecom_retries(app, wecom, monkeypatch, caplog):
    import sqlite3

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(app.extensions["wecom"].store, "claim_job", locked)
    result = wecom.send_text("hello")
    assert result.status == 503
    assert "database is locked" in caplog.text
