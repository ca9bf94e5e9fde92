"""AES-256-CBC envelope of WeCom callbacks.

Plaintext layout: ``random(16) | msg_len (4 bytes, big-endian) | msg | receiveid``, padded with
PKCS#7 over a 32-byte block (the key length, not the AES block size); IV = first 16 bytes of
the key.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable
from typing import Any

from Crypto.Cipher import AES

from .errors import (
    DecodeBase64Error,
    DecryptError,
    EncryptError,
    IllegalBufferError,
    InvalidAESKeyError,
    ReceiveIdError,
)

PAD_BLOCK = 32
_HEADER = 20  # 16 random bytes + 4-byte length


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """Turn the 43-character EncodingAESKey into the 32-byte AES key.

    Decoding is deliberately lenient about the unused low bits of the last character: the official
    sample key is not canonical base64, and the admin console produces such keys.
    """
    if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
        raise InvalidAESKeyError("EncodingAESKey must be exactly 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidAESKeyError(f"EncodingAESKey is not base64: {exc}") from None
    if len(key) != 32:
        raise InvalidAESKeyError("EncodingAESKey does not decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    amount = block - len(data) % block
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    if not data:
        raise IllegalBufferError("empty buffer")
    amount = data[-1]
    if not 1 <= amount <= block or len(data) < amount or data[-amount:] != bytes([amount]) * amount:
        raise IllegalBufferError("bad PKCS#7 padding")
    return data[:-amount]


class MessageCrypto:
    """Encrypts and decrypts message bodies for one (EncodingAESKey, receiveid) pair."""

    def __init__(
        self,
        encoding_aes_key: str,
        receive_id: str,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.key = decode_aes_key(encoding_aes_key)
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode("utf-8")
        self._random_bytes = random_bytes
        self._iv = self.key[:16]
        # ECB holds no state between calls, so one object serves every decryption (see
        # _cbc_decrypt); a CBC object carries its chain and is made per encryption.
        self._ecb = AES.new(self.key, AES.MODE_ECB)

    def _cipher(self) -> Any:
        return AES.new(self.key, AES.MODE_CBC, self._iv)

    def _cbc_decrypt(self, raw: bytes) -> bytes:
        """CBC decryption as one ECB pass XORed with the IV and the ciphertext shifted one block
        (P_i = D(C_i) xor C_(i-1), C_0 = IV): no per-call cipher set-up, about half the cost of
        a fresh CBC object for a callback-sized body."""
        blocks = self._ecb.decrypt(raw)
        chain = self._iv + raw[:-16]
        mixed = int.from_bytes(blocks, "big") ^ int.from_bytes(chain, "big")
        return mixed.to_bytes(len(raw), "big")

    def encrypt(self, message: str | bytes) -> str:
        """Return the base64 ciphertext of ``message`` (text is encoded as UTF-8)."""
        if isinstance(message, str):
            try:
                body = message.encode("utf-8")
            except UnicodeEncodeError:
                raise EncryptError("message is not encodable as UTF-8") from None
        elif isinstance(message, bytes | bytearray | memoryview):
            body = bytes(message)
        else:
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        prefix = self._random_bytes(16)
        if len(prefix) != 16:
            raise EncryptError("random_bytes(16) must return 16 bytes")
        plain = prefix + struct.pack(">I", len(body)) + body + self._receive_id_bytes
        try:
            encrypted = self._cipher().encrypt(pkcs7_pad(plain))
        except (ValueError, TypeError) as exc:
            raise EncryptError(str(exc)) from None
        return base64.b64encode(encrypted).decode("ascii")

    def decrypt_bytes(self, encrypted: str) -> tuple[bytes, bytes]:
        """Return (message bytes, receiveid bytes) without checking the receiveid."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DecodeBase64Error() from None
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext length is not a multiple of 16")
        try:
            plain = self._cbc_decrypt(raw)
        except ValueError as exc:
            raise DecryptError(str(exc)) from None
        plain = pkcs7_unpad(plain)
        if len(plain) < _HEADER:
            raise IllegalBufferError("buffer shorter than its header")
        (length,) = struct.unpack(">I", plain[16:_HEADER])
        if _HEADER + length > len(plain):
            raise IllegalBufferError("message length exceeds the buffer")
        return plain[_HEADER : _HEADER + length], plain[_HEADER + length :]

    def decrypt(self, encrypted: str) -> str:
        """Decrypt, check the receiveid byte for byte, and return the message as text."""
        message, receive_id = self.decrypt_bytes(encrypted)
        if receive_id != self._receive_id_bytes:
            raise ReceiveIdError()
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise IllegalBufferError("message is not UTF-8") from None
