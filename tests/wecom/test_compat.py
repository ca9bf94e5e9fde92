"""The drop-in WXBizMsgCrypt: official call pattern, return shapes and codes."""

from __future__ import annotations

import base64
import time

import pytest
from Crypto.Cipher import AES
from wechatpy.enterprise.crypto import WeChatCrypto

from app.wecom.aes import MessageCrypto, decode_aes_key, pkcs7_pad
from app.wecom.compat import FormatException, InvalidTokenError, WXBizMsgCrypt
from app.wecom.errors import InvalidAESKeyError
from app.wecom.signature import compute_signature
from app.wecom.xmlsafe import parse_xml

from .samples import (
    CORP_ID,
    ENCODING_AES_KEY,
    OFFICIAL_DOC_GET,
    OFFICIAL_DOC_POST,
    OFFICIAL_SAMPLE_GET,
    OFFICIAL_SAMPLE_POST,
    TOKEN,
    OfficialVector,
)


def official(v: OfficialVector) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(v.token, v.encoding_aes_key, v.receive_id)


@pytest.mark.parametrize("v", [OFFICIAL_DOC_GET, OFFICIAL_SAMPLE_GET], ids=["doc", "sample"])
def test_verify_url_returns_bytes_like_the_official_class(v: OfficialVector) -> None:
    ret, echo = official(v).VerifyURL(v.msg_signature, v.timestamp, v.nonce, v.encrypted)
    assert ret == 0
    assert echo == v.plaintext.encode()
    assert isinstance(echo, bytes)


@pytest.mark.parametrize("v", [OFFICIAL_DOC_POST, OFFICIAL_SAMPLE_POST], ids=["doc", "sample"])
@pytest.mark.parametrize("as_text", [True, False])
def test_decrypt_msg_official(v: OfficialVector, as_text: bool) -> None:
    post = v.body.decode() if as_text else v.body
    ret, xml = official(v).DecryptMsg(post, v.msg_signature, v.timestamp, v.nonce)
    assert (ret, xml) == (0, v.plaintext.encode())


def test_encrypt_msg_then_decrypt_msg_like_the_official_sample() -> None:
    v = OFFICIAL_SAMPLE_POST
    crypt = official(v)
    reply = v.plaintext
    ret, envelope = crypt.EncryptMsg(reply, v.nonce, v.timestamp)
    assert ret == 0
    assert isinstance(envelope, str)
    assert envelope.startswith("<xml>\n<Encrypt><![CDATA[")
    fields = parse_xml(envelope)
    assert list(fields) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    assert (fields["TimeStamp"], fields["Nonce"]) == (v.timestamp, v.nonce)
    ret, plain = crypt.DecryptMsg(envelope, fields["MsgSignature"], v.timestamp, v.nonce)
    assert (ret, plain) == (0, reply.encode())


def test_encrypt_msg_timestamp_defaults_to_now_and_accepts_an_int() -> None:
    crypt = WXBizMsgCrypt(TOKEN, ENCODING_AES_KEY, CORP_ID)
    before = int(time.time())
    ret, envelope = crypt.EncryptMsg("<xml/>", "123")
    assert ret == 0
    assert before <= int(parse_xml(envelope)["TimeStamp"]) <= int(time.time())
    ret, envelope = crypt.EncryptMsg("<xml/>", "123", 1409659813)
    assert (ret, parse_xml(envelope)["TimeStamp"]) == (0, "1409659813")


def test_wechatpy_reads_encrypt_msg_output() -> None:
    ret, envelope = WXBizMsgCrypt(TOKEN, ENCODING_AES_KEY, CORP_ID).EncryptMsg("你好 😀", "9", "7")
    assert ret == 0
    signature = parse_xml(envelope)["MsgSignature"]
    assert WeChatCrypto(TOKEN, ENCODING_AES_KEY, CORP_ID).decrypt_message(
        envelope, signature, "7", "9"
    ) == ("你好 😀")


def test_bad_key_raises_in_the_constructor() -> None:
    with pytest.raises(FormatException) as info:
        WXBizMsgCrypt(TOKEN, "too-short", CORP_ID)
    assert isinstance(info.value, InvalidAESKeyError)
    assert info.value.code == -40004


def test_bad_token_raises_in_the_constructor() -> None:
    with pytest.raises(InvalidTokenError):
        WXBizMsgCrypt("not a token!", ENCODING_AES_KEY, CORP_ID)


# --- failure codes ----------------------------------------------------------------------


def _signed_body(encrypted: str, ts: str = "1", nonce: str = "2") -> tuple[str, str]:
    return f"<xml><Encrypt>{encrypted}</Encrypt></xml>", compute_signature(
        TOKEN, ts, nonce, encrypted
    )


def _raw(plain: bytes) -> str:
    key = decode_aes_key(ENCODING_AES_KEY)
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)).decode()


CRYPT = WXBizMsgCrypt(TOKEN, ENCODING_AES_KEY, CORP_ID)


def test_verify_url_failures() -> None:
    v = OFFICIAL_DOC_GET
    assert official(v).VerifyURL("0" * 40, v.timestamp, v.nonce, v.encrypted) == (-40001, None)
    assert official(v).VerifyURL(v.msg_signature, None, v.nonce, v.encrypted) == (-40003, None)
    other = WXBizMsgCrypt(v.token, v.encoding_aes_key, "wx0000000000000000")
    assert other.VerifyURL(v.msg_signature, v.timestamp, v.nonce, v.encrypted) == (-40005, None)


@pytest.mark.parametrize(
    ("encrypted", "code"),
    [
        ("%%%not base64%%%", -40010),
        (base64.b64encode(b"\0" * 17).decode(), -40007),
        (_raw(b"\0" * 32), -40008),
        (_raw(b"R" * 16 + b"\xff\xff\xff\xff" + b"x" * 11 + b"\x01"), -40008),
        (MessageCrypto(ENCODING_AES_KEY, "ww-other").encrypt("<xml/>"), -40005),
        (_raw(pkcs7_pad(b"R" * 16 + b"\0\0\0\2\xff\xfe" + CORP_ID.encode())), -40008),
    ],
    ids=["base64", "length", "padding", "msg-len", "receiveid", "not-utf8"],
)
def test_decrypt_msg_failure_codes(encrypted: str, code: int) -> None:
    body, signature = _signed_body(encrypted)
    assert CRYPT.DecryptMsg(body, signature, "1", "2") == (code, None)


def test_decrypt_msg_envelope_and_signature_failures() -> None:
    assert CRYPT.DecryptMsg("<xml><ToUserName>x</ToUserName></xml>", "s", "1", "2") == (
        -40002,
        None,
    )
    assert CRYPT.DecryptMsg("not xml", "s", "1", "2") == (-40002, None)
    body, _ = _signed_body(MessageCrypto(ENCODING_AES_KEY, CORP_ID).encrypt("<xml/>"))
    assert CRYPT.DecryptMsg(body, "0" * 40, "1", "2") == (-40001, None)


def test_encrypt_msg_failure_code() -> None:
    assert CRYPT.EncryptMsg("lone \ud800", "1", "2") == (-40006, None)
