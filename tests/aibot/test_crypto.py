"""The bot's envelopes against Tencent's JSON samples and an independent implementation."""

from __future__ import annotations

import json

import pytest

from app.wecom import MessageCrypto, ReceiveIdError, SignatureError, compute_signature
from app.wecom.aibot import BotCrypto, BotEnvelopeError, BotMessageError, parse_bot_message
from tests.aibot import official

LIMIT = 256 * 1024


def test_java_json_sample_verifies_and_its_receiveid_is_refused_by_the_bot() -> None:
    assert (
        compute_signature(
            official.JAVA_TOKEN, official.JAVA_TIMESTAMP, official.JAVA_NONCE, official.JAVA_ENCRYPT
        )
        == official.JAVA_SIGNATURE
    )
    message, receive_id = MessageCrypto(official.JAVA_KEY, official.JAVA_CORP_ID).decrypt_bytes(
        official.JAVA_ENCRYPT
    )
    assert receive_id == official.JAVA_CORP_ID.encode()
    assert json.loads(message)["Content"] == "hello"
    bot = BotCrypto(official.JAVA_TOKEN, official.JAVA_KEY)
    # Signature and envelope pass; the receiveid (a CorpID, not "") does not.
    with pytest.raises(ReceiveIdError):
        bot.open(
            official.JAVA_BODY,
            official.JAVA_SIGNATURE,
            official.JAVA_TIMESTAMP,
            official.JAVA_NONCE,
            LIMIT,
        )


def test_the_vector_in_the_java_samples_comment_does_not_verify() -> None:
    body = json.dumps({"encrypt": official.COMMENT_ENCRYPT})
    with pytest.raises(SignatureError):
        BotCrypto(official.JAVA_TOKEN, official.JAVA_KEY).open(
            body, official.COMMENT_SIGNATURE, official.JAVA_TIMESTAMP, official.JAVA_NONCE, LIMIT
        )


def test_python_json_sample_verifies_with_the_python_xml_samples_keys() -> None:
    crypto = MessageCrypto(official.PY_KEY, official.PY_RECEIVE_ID)
    v = official.PY_VERIFY
    assert (
        compute_signature(official.PY_TOKEN, v["timestamp"], v["nonce"], v["echostr"])
        == v["msg_signature"]
    )
    assert crypto.decrypt(v["echostr"]) == official.PY_VERIFY_ECHO
    assert (
        compute_signature(
            official.PY_TOKEN, official.PY_TIMESTAMP, official.PY_NONCE, official.PY_ENCRYPT
        )
        == official.PY_SIGNATURE
    )
    plain = crypto.decrypt(official.PY_ENCRYPT)
    assert '"FromUserName": :mycreate"' in plain  # the sample's own plaintext is broken JSON
    with pytest.raises(BotMessageError):
        parse_bot_message(plain)


@pytest.mark.parametrize(
    "text", ['{"msgtype":"text","text":{"content":"你好 😀"}}', "x" * 5000, ""]
)
def test_independent_official_algorithm_opens_our_replies(text: str) -> None:
    ours = BotCrypto("tok3n", official.JAVA_KEY)
    theirs = official.OfficialJsonAlgorithm("tok3n", official.JAVA_KEY, "")
    sealed = json.loads(ours.seal({"t": text}, nonce="4242", timestamp="1700000000"))
    assert set(sealed) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    assert (sealed["timestamp"], sealed["nonce"]) == ("1700000000", "4242")
    opened = theirs.decrypt_post(json.dumps(sealed), sealed["msgsignature"], "1700000000", "4242")
    assert json.loads(opened) == {"t": text}


def test_we_open_what_the_independent_algorithm_sends() -> None:
    theirs = official.OfficialJsonAlgorithm("tok3n", official.JAVA_KEY, "")
    message = json.dumps(
        {"msgid": "m1", "msgtype": "text", "text": {"content": "长" * 3000}}, ensure_ascii=False
    )
    envelope = json.loads(theirs.encrypt_reply(message, "99", "1700000001"))
    body = json.dumps({"encrypt": envelope["encrypt"]})
    plain = BotCrypto("tok3n", official.JAVA_KEY).open(
        body, envelope["msgsignature"], "1700000001", "99", LIMIT
    )
    assert parse_bot_message(plain)["text"]["content"] == "长" * 3000
    echo = theirs.encrypt("123456")
    assert (
        BotCrypto("tok3n", official.JAVA_KEY).verify_url(
            theirs.sign("1", "2", echo), "1", "2", echo
        )
        == "123456"
    )


def test_a_ciphertext_made_for_a_corp_id_is_refused() -> None:
    theirs = official.OfficialJsonAlgorithm("tok3n", official.JAVA_KEY, "wwcorp")
    encrypted = theirs.encrypt('{"msgtype":"text","text":{"content":"x"}}')
    with pytest.raises(ReceiveIdError):
        BotCrypto("tok3n", official.JAVA_KEY).open(
            json.dumps({"encrypt": encrypted}), theirs.sign("1", "2", encrypted), "1", "2", LIMIT
        )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"encrypt": 5}',
        b'{"encrypt": ""}',
        b'{"Encrypt": "abc"}',
        b'{"encrypt": "a", "encrypt": "b"}',
        b'{"encrypt": "a", "x": [[1]]}',
        b"\xff\xfe",
        b'{"encrypt": NaN}',
        b"{" * 100_000,
        b'{"a":' + b"[" * 100_000,
    ],
)
def test_bad_envelopes_are_envelope_errors(body: bytes) -> None:
    with pytest.raises(BotEnvelopeError) as caught:
        BotCrypto("tok3n", official.JAVA_KEY).open(body, "0" * 40, "1", "2", LIMIT)
    assert caught.value.http_status == 400


def test_repr_shows_no_secret() -> None:
    assert "tok3n" not in repr(BotCrypto("tok3n", official.JAVA_KEY))


def test_the_bot_protocol_package_does_no_io() -> None:
    import subprocess
    import sys

    code = (
        "import sys, app.wecom.aibot; "
        "print(sorted({'flask', 'requests', 'gevent'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
