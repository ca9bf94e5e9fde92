"""AES envelope: official vectors, the K=32 padding, every error path, and wechatpy cross-checks."""

from __future__ import annotations

import base64
import struct

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad
from hypothesis import given
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import PrpCrypto

from app.wecom.aes import MessageCrypto, decode_aes_key, pkcs7_pad, pkcs7_unpad
from app.wecom.errors import (
    DecodeBase64Error,
    DecryptError,
    EncryptError,
    IllegalBufferError,
    InvalidAESKeyError,
    ReceiveIdError,
    WeComError,
)

from .samples import (
    CORP_ID,
    ENCODING_AES_KEY,
    OFFICIAL_DOC_GET,
    OFFICIAL_DOC_POST,
    OFFICIAL_VECTORS,
)

KEY = decode_aes_key(ENCODING_AES_KEY)


def raw_encrypt(plain: bytes, key: bytes = KEY) -> str:
    """Encrypt an arbitrary (already padded) buffer, to craft broken ciphertexts."""
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)).decode()


def raw_decrypt(encrypted: str, key: bytes = KEY) -> bytes:
    return AES.new(key, AES.MODE_CBC, key[:16]).decrypt(base64.b64decode(encrypted))


def layout(msg: bytes, receive_id: bytes = CORP_ID.encode()) -> bytes:
    return b"R" * 16 + struct.pack(">I", len(msg)) + msg + receive_id


def crypto(receive_id: str = CORP_ID) -> MessageCrypto:
    return MessageCrypto(ENCODING_AES_KEY, receive_id)


# --- key --------------------------------------------------------------------------------


def test_doc_key_is_not_canonical_base64_but_is_accepted() -> None:
    key = decode_aes_key(OFFICIAL_DOC_POST.encoding_aes_key)
    assert len(key) == 32
    assert base64.b64encode(key).decode()[:43] != OFFICIAL_DOC_POST.encoding_aes_key


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ENCODING_AES_KEY[:42],
        ENCODING_AES_KEY + "A",
        ENCODING_AES_KEY[:42] + "!",
        ENCODING_AES_KEY[:42] + "=",  # decodes to 31 bytes
        None,
    ],
)
def test_bad_key(bad: str | None) -> None:
    with pytest.raises(InvalidAESKeyError) as info:
        MessageCrypto(bad, CORP_ID)  # type: ignore[arg-type]
    assert info.value.code == -40004
    assert info.value.http_status == 500


# --- padding ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(0, 70))
def test_pkcs7_uses_32_byte_blocks(length: int) -> None:
    padded = pkcs7_pad(b"x" * length)
    assert len(padded) % 32 == 0
    amount = padded[-1]
    assert 1 <= amount <= 32
    assert padded[-amount:] == bytes([amount]) * amount
    assert pkcs7_unpad(padded) == b"x" * length


def test_aligned_data_gets_a_full_block_of_0x20() -> None:
    assert pkcs7_pad(b"y" * 32) == b"y" * 32 + b"\x20" * 32


def test_official_vector_has_pad_30_which_block_16_unpadding_rejects() -> None:
    v = OFFICIAL_DOC_POST
    plain = raw_decrypt(v.encrypted, decode_aes_key(v.encoding_aes_key))
    assert plain[-30:] == b"\x1e" * 30
    with pytest.raises(ValueError, match="Padding"):
        unpad(plain, 16)
    assert unpad(plain, 32)  # the right block size works


# --- official vectors -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OFFICIAL_VECTORS))
def test_official_vectors_decrypt(name: str) -> None:
    v = OFFICIAL_VECTORS[name]
    c = MessageCrypto(v.encoding_aes_key, v.receive_id)
    assert c.decrypt(v.encrypted) == v.plaintext
    assert c.decrypt_bytes(v.encrypted) == (v.plaintext.encode(), v.receive_id.encode())


def test_official_vector_with_the_wrong_receive_id() -> None:
    v = OFFICIAL_DOC_GET
    with pytest.raises(ReceiveIdError) as info:
        MessageCrypto(v.encoding_aes_key, "wx5823bf96d3bd56c8").decrypt(v.encrypted)
    assert (info.value.code, info.value.http_status) == (-40005, 403)


def test_official_vector_with_another_key_fails() -> None:
    with pytest.raises(WeComError):
        crypto("wx5823bf96d3bd56c7").decrypt(OFFICIAL_DOC_POST.encrypted)


# --- encryption -------------------------------------------------------------------------


def test_layout_with_injected_randomness() -> None:
    c = MessageCrypto(ENCODING_AES_KEY, CORP_ID, random_bytes=lambda n: b"\x07" * n)
    message = "中文😀 text"
    plain = pkcs7_unpad(raw_decrypt(c.encrypt(message)))
    body = message.encode()
    assert plain[:16] == b"\x07" * 16
    assert struct.unpack(">I", plain[16:20])[0] == len(body) == 15  # bytes, not 8 characters
    assert plain[20:] == body + CORP_ID.encode()
    assert c.encrypt(message) == c.encrypt(message)  # deterministic once randomness is pinned


def test_default_randomness_differs_each_time() -> None:
    c = crypto()
    assert c.encrypt("same") != c.encrypt("same")


def test_ciphertext_is_a_multiple_of_32_bytes() -> None:
    for n in range(0, 100, 7):
        assert len(base64.b64decode(crypto().encrypt("a" * n))) % 32 == 0


def test_encrypt_rejects_what_it_cannot_encode() -> None:
    with pytest.raises(EncryptError) as info:
        crypto().encrypt("lone \ud800 surrogate")
    assert info.value.code == -40006
    with pytest.raises(TypeError):
        crypto().encrypt(12)  # type: ignore[arg-type]
    short = MessageCrypto(ENCODING_AES_KEY, CORP_ID, random_bytes=lambda n: b"x")
    with pytest.raises(EncryptError):
        short.encrypt("x")


# --- error paths ------------------------------------------------------------------------


@pytest.mark.parametrize("encrypted", ["not base64!", "QUJDRA", "QUJD\nRA==", "ＱＵＪＤ", None])
def test_bad_base64(encrypted: str | None) -> None:
    with pytest.raises(DecodeBase64Error) as info:
        crypto().decrypt(encrypted)  # type: ignore[arg-type]
    assert (info.value.code, info.value.http_status) == (-40010, 400)


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33])
def test_wrong_ciphertext_length(size: int) -> None:
    with pytest.raises(DecryptError) as info:
        crypto().decrypt(base64.b64encode(b"\0" * size).decode())
    assert info.value.code == -40007


def _padded_with(tail: bytes, body: bytes | None = None) -> str:
    body = body if body is not None else layout(b"<xml/>")
    filler = (-(len(body) + len(tail))) % 32
    return raw_encrypt(body + b"\0" * filler + tail)


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00",  # pad 0
        b"\x21" * 33,  # pad 33 > 32
        b"\xff",  # pad 255
        b"\x01" + b"\x03\x03",  # last byte says 3, the two before disagree
        b"\x05" * 4 + b"\x06",  # inconsistent pad bytes
    ],
)
def test_bad_padding(tail: bytes) -> None:
    with pytest.raises(IllegalBufferError) as info:
        crypto().decrypt(_padded_with(tail))
    assert info.value.code == -40008


def test_msg_len_beyond_the_buffer() -> None:
    body = b"R" * 16 + struct.pack(">I", 1000) + b"<xml/>" + CORP_ID.encode()
    with pytest.raises(IllegalBufferError, match="exceeds"):
        crypto().decrypt(raw_encrypt(pkcs7_pad(body)))


def test_buffer_shorter_than_its_header() -> None:
    with pytest.raises(IllegalBufferError, match="shorter"):
        crypto().decrypt(raw_encrypt(pkcs7_pad(b"R" * 19)))


def test_message_that_is_not_utf8() -> None:
    with pytest.raises(IllegalBufferError, match="UTF-8"):
        crypto().decrypt(raw_encrypt(pkcs7_pad(layout(b"\xff\xfe"))))


def test_receive_id_is_compared_byte_for_byte() -> None:
    for other in [CORP_ID.upper(), CORP_ID + " ", CORP_ID[:-1], ""]:
        encrypted = MessageCrypto(ENCODING_AES_KEY, other).encrypt("<xml/>")
        with pytest.raises(ReceiveIdError):
            crypto().decrypt(encrypted)


def test_empty_receive_id_for_the_intelligent_bot() -> None:
    bot = crypto("")
    encrypted = bot.encrypt('{"msgid": "1"}')
    assert bot.decrypt(encrypted) == '{"msgid": "1"}'
    assert bot.decrypt_bytes(encrypted) == (b'{"msgid": "1"}', b"")
    with pytest.raises(ReceiveIdError):
        bot.decrypt(crypto().encrypt("{}"))


# --- properties and cross-checks --------------------------------------------------------


@given(st.text(), st.text(max_size=40))
def test_text_round_trip(message: str, receive_id: str) -> None:
    c = crypto(receive_id)
    assert c.decrypt(c.encrypt(message)) == message


@given(st.binary(max_size=2000))
def test_bytes_round_trip(message: bytes) -> None:
    c = crypto()
    assert c.decrypt_bytes(c.encrypt(message)) == (message, CORP_ID.encode())


CROSS_TEXTS = ["<xml/>", "你好，世界", "emoji 😀👍🏽 and 中文 mixed", "x" * 5000, ""]


@pytest.mark.parametrize("text", CROSS_TEXTS)
def test_wechatpy_decrypts_ours(text: str) -> None:
    theirs = PrpCrypto(KEY)
    assert theirs.decrypt(crypto().encrypt(text), CORP_ID) == text


@pytest.mark.parametrize("text", CROSS_TEXTS)
def test_we_decrypt_wechatpys(text: str) -> None:
    encrypted = PrpCrypto(KEY).encrypt(text, CORP_ID).decode()
    assert crypto().decrypt(encrypted) == text
