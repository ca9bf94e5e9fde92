"""CallbackCrypto: official vectors, reply sealing, config errors, and wechatpy both ways."""

from __future__ import annotations

import base64
import json
import re

import pytest
from Crypto.Cipher import AES
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from app.wecom.aes import MessageCrypto, decode_aes_key
from app.wecom.callback import CallbackCrypto, InvalidTokenError, random_nonce
from app.wecom.envelope import parse_envelope
from app.wecom.errors import (
    ComputeSignatureError,
    DecodeBase64Error,
    EnvelopeError,
    IllegalBufferError,
    InvalidAESKeyError,
    ReceiveIdError,
    SignatureError,
)
from app.wecom.signature import compute_signature
from app.wecom.xmlsafe import parse_xml

from .samples import (
    CORP_ID,
    ENCODING_AES_KEY,
    OFFICIAL_DOC_GET,
    OFFICIAL_DOC_POST,
    OFFICIAL_SAMPLE_GET,
    OFFICIAL_SAMPLE_POST,
    SAMPLES,
    TOKEN,
    OfficialVector,
)

REPLY = "<xml><Content><![CDATA[回复 😀 ]]]]><![CDATA[>]]></Content></xml>"


def endpoint(receive_id: str = CORP_ID, **kwargs: object) -> CallbackCrypto:
    return CallbackCrypto(TOKEN, ENCODING_AES_KEY, receive_id, **kwargs)  # type: ignore[arg-type]


def for_vector(v: OfficialVector) -> CallbackCrypto:
    return CallbackCrypto(v.token, v.encoding_aes_key, v.receive_id)


def seal(plaintext: str, receive_id: str = CORP_ID, nonce: str = "42", ts: str = "1718000300"):
    """Encrypt and sign an inbound callback the way WeCom does; returns (body, sig, ts, nonce)."""
    encrypted = MessageCrypto(ENCODING_AES_KEY, receive_id).encrypt(plaintext)
    body = f"<xml><ToUserName>{CORP_ID}</ToUserName><Encrypt>{encrypted}</Encrypt></xml>"
    return body.encode(), compute_signature(TOKEN, ts, nonce, encrypted), ts, nonce


# --- official vectors -------------------------------------------------------------------


@pytest.mark.parametrize("v", [OFFICIAL_DOC_GET, OFFICIAL_SAMPLE_GET], ids=["doc", "sample"])
def test_verify_url_official(v: OfficialVector) -> None:
    echo = for_vector(v).verify_url(v.msg_signature, v.timestamp, v.nonce, v.encrypted)
    assert echo == v.plaintext
    assert echo.isdigit()  # the bare body to answer: no quotes, no newline


@pytest.mark.parametrize("v", [OFFICIAL_DOC_POST, OFFICIAL_SAMPLE_POST], ids=["doc", "sample"])
def test_decrypt_callback_official(v: OfficialVector) -> None:
    plain = for_vector(v).decrypt_callback(v.body, v.msg_signature, v.timestamp, v.nonce)
    assert plain == v.plaintext


def test_doc_envelope_typo_does_not_matter() -> None:
    # doc 90968 prints ToUserName "ax5823..." in the envelope: unsigned, so it is never checked
    v = OFFICIAL_DOC_POST
    body = v.body.replace(
        b"wx5823bf96d3bd56c7]]></ToUserName>", b"ax5823bf96d3bd56c7]]></ToUserName>"
    )
    assert body != v.body
    assert for_vector(v).decrypt_callback(body, v.msg_signature, v.timestamp, v.nonce)


# --- errors -----------------------------------------------------------------------------


def test_wrong_signature_on_get_and_post() -> None:
    v = OFFICIAL_DOC_GET
    with pytest.raises(SignatureError) as info:
        for_vector(v).verify_url("0" * 40, v.timestamp, v.nonce, v.encrypted)
    assert (info.value.code, info.value.http_status) == (-40001, 403)
    p = OFFICIAL_DOC_POST
    with pytest.raises(SignatureError):
        for_vector(p).decrypt_callback(p.body, p.msg_signature, "1409659814", p.nonce)


def test_signature_is_checked_before_anything_is_decrypted() -> None:
    body = b"<xml><Encrypt>!!not-base64!!</Encrypt></xml>"
    with pytest.raises(SignatureError):
        endpoint().decrypt_callback(body, "0" * 40, "1", "2")
    signature = compute_signature(TOKEN, "1", "2", "!!not-base64!!")
    with pytest.raises(DecodeBase64Error):
        endpoint().decrypt_callback(body, signature, "1", "2")


def test_missing_query_values() -> None:
    body, sig, ts, nonce = seal("<xml/>")
    with pytest.raises(SignatureError):
        endpoint().decrypt_callback(body, None, ts, nonce)  # type: ignore[arg-type]
    with pytest.raises(ComputeSignatureError) as info:
        endpoint().decrypt_callback(body, sig, None, nonce)  # type: ignore[arg-type]
    assert info.value.code == -40003


def test_broken_envelope() -> None:
    with pytest.raises(EnvelopeError) as info:
        endpoint().decrypt_callback(b"<xml><Encrypt>abc", "0" * 40, "1", "2")
    assert info.value.code == -40002


def test_ciphertext_for_another_receive_id() -> None:
    body, sig, ts, nonce = seal("<xml/>", receive_id="ww-another-corp")
    with pytest.raises(ReceiveIdError) as info:
        endpoint().decrypt_callback(body, sig, ts, nonce)
    assert (info.value.code, info.value.http_status) == (-40005, 403)


def test_tampered_padding_is_caught_after_a_valid_signature() -> None:
    key = decode_aes_key(ENCODING_AES_KEY)
    zeros = base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(b"\x00" * 32)).decode()
    body = f"<xml><Encrypt>{zeros}</Encrypt></xml>".encode()
    with pytest.raises(IllegalBufferError) as info:
        endpoint().decrypt_callback(body, compute_signature(TOKEN, "1", "2", zeros), "1", "2")
    assert info.value.code == -40008


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "empty"),
        ("a" * 33, "33 characters"),
        ("secret_tok", "letters"),
        ("secret tok", "letters"),
        ("秘密token", "letters"),
        ("ｓｅｃｒｅｔ", "letters"),  # full-width letters are not ASCII
        (None, "string"),
    ],
)
def test_invalid_token(token: str | None, problem: str) -> None:
    with pytest.raises(InvalidTokenError, match=problem) as info:
        CallbackCrypto(token, ENCODING_AES_KEY, CORP_ID)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    if token:
        assert token not in str(info.value)  # never echo the secret


def test_longest_token_is_accepted() -> None:
    assert CallbackCrypto("Ab1" * 10 + "Z9", ENCODING_AES_KEY, CORP_ID)


def test_invalid_key() -> None:
    with pytest.raises(InvalidAESKeyError):
        CallbackCrypto(TOKEN, ENCODING_AES_KEY[:-1], CORP_ID)


def test_receive_id_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        CallbackCrypto(TOKEN, ENCODING_AES_KEY, None)  # type: ignore[arg-type]


def test_repr_hides_the_secrets() -> None:
    text = repr(endpoint())
    assert CORP_ID in text
    assert TOKEN not in text
    assert ENCODING_AES_KEY not in text


# --- replies ----------------------------------------------------------------------------


def test_encrypt_reply_with_pinned_randomness_time_and_nonce() -> None:
    c = endpoint(
        random_bytes=lambda n: b"\x01" * n, clock=lambda: 1718000200.9, nonce_factory=lambda: "555"
    )
    envelope = c.encrypt_reply(REPLY)
    assert envelope == c.encrypt_reply(REPLY)
    fields = parse_xml(envelope)
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert (fields["TimeStamp"], fields["Nonce"]) == ("1718000200", "555")
    assert fields["MsgSignature"] == compute_signature(
        TOKEN, "1718000200", "555", fields["Encrypt"]
    )
    assert (
        c.decrypt_callback(envelope.encode(), fields["MsgSignature"], "1718000200", "555") == REPLY
    )


def test_encrypt_reply_can_reuse_the_request_values() -> None:
    fields = parse_xml(endpoint().encrypt_reply(REPLY, nonce="1372623149", timestamp="1409659813"))
    assert (fields["TimeStamp"], fields["Nonce"]) == ("1409659813", "1372623149")


def test_default_nonce_and_randomness() -> None:
    c = endpoint()
    first, second = parse_xml(c.encrypt_reply(REPLY)), parse_xml(c.encrypt_reply(REPLY))
    assert first["Encrypt"] != second["Encrypt"]
    assert re.fullmatch(r"[1-9]\d{9}", first["Nonce"])
    assert re.fullmatch(r"\d{10}", first["TimeStamp"])
    assert len({random_nonce() for _ in range(50)}) > 45


@pytest.mark.parametrize("name", ["text", "event_template_card_event", "kf_msg_or_event"])
def test_round_trip_of_samples(name: str) -> None:
    body, sig, ts, nonce = seal(SAMPLES[name])
    assert endpoint().decrypt_callback(body, sig, ts, nonce) == SAMPLES[name]


# --- intelligent bot: empty receiveid, JSON envelope --------------------------------------


def test_bot_with_empty_receive_id() -> None:
    bot = endpoint("")
    message = json.dumps({"msgid": "abc", "msgtype": "text", "text": {"content": "你好"}})
    encrypted = MessageCrypto(ENCODING_AES_KEY, "").encrypt(message)
    signature = compute_signature(TOKEN, "1718000400", "77", encrypted)
    assert bot.verify_url(signature, "1718000400", "77", encrypted) == message
    body = json.dumps({"encrypt": encrypted}).encode()
    assert bot.decrypt_callback(body, signature, "1718000400", "77") == message
    with pytest.raises(ReceiveIdError):
        endpoint().decrypt_callback(body, signature, "1718000400", "77")


# --- wechatpy cross-checks --------------------------------------------------------------

TEXTS = ["<xml><Content>hi</Content></xml>", "中文回复", "emoji 😀👍🏽 mixed 中文", "长" * 3000]


@pytest.mark.parametrize("text", TEXTS)
def test_wechatpy_opens_our_replies(text: str) -> None:
    envelope = endpoint().encrypt_reply(text, nonce="9", timestamp="1718000500")
    fields = parse_xml(envelope)
    theirs = WeChatCrypto(TOKEN, ENCODING_AES_KEY, CORP_ID)
    assert theirs.decrypt_message(envelope, fields["MsgSignature"], "1718000500", "9") == text


@pytest.mark.parametrize("text", TEXTS)
def test_we_open_wechatpy_replies(text: str) -> None:
    envelope = WeChatCrypto(TOKEN, ENCODING_AES_KEY, CORP_ID).encrypt_message(
        text, "9", "1718000500"
    )
    fields = parse_envelope(envelope.encode())
    signature = parse_xml(envelope)["MsgSignature"]
    assert fields["Encrypt"]
    assert endpoint().decrypt_callback(envelope.encode(), signature, "1718000500", "9") == text


@pytest.mark.parametrize("receive_id", [CORP_ID, ""])
def test_url_verification_both_ways(receive_id: str) -> None:
    key = decode_aes_key(ENCODING_AES_KEY)
    theirs = WeChatCrypto(TOKEN, ENCODING_AES_KEY, receive_id)
    echostr = PrpCrypto(key).encrypt("1616140317555161061", receive_id).decode()
    signature = compute_signature(TOKEN, "1", "2", echostr)
    assert endpoint(receive_id).verify_url(signature, "1", "2", echostr) == "1616140317555161061"
    ours = MessageCrypto(ENCODING_AES_KEY, receive_id).encrypt("2727")
    assert (
        theirs.check_signature(compute_signature(TOKEN, "1", "2", ours), "1", "2", ours) == "2727"
    )
