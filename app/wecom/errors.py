"""Typed errors of the protocol layer.

Each error carries the return code of the official WXBizMsgCrypt libraries (so logs read the same as
WeCom's own documentation) and the HTTP status a server should answer with, in the manner of h11's
``error_status_hint``. Nothing here knows about Flask.
"""

from __future__ import annotations


class WeComError(Exception):
    """Base class: something about a callback is wrong."""

    code: int = -40000
    http_status: int = 400
    reason: str = "bad request"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.reason
        super().__init__(f"{self.code} {self.detail}")


class SignatureError(WeComError):
    code = -40001
    http_status = 403
    reason = "signature check failed"


class EnvelopeError(WeComError):
    code = -40002
    reason = "cannot parse the callback envelope"


class ComputeSignatureError(WeComError):
    code = -40003
    reason = "cannot compute the signature"


class InvalidAESKeyError(WeComError):
    code = -40004
    http_status = 500
    reason = "EncodingAESKey must be 43 characters that decode to 32 bytes"


class ReceiveIdError(WeComError):
    code = -40005
    http_status = 403
    reason = "receiveid does not match"


class EncryptError(WeComError):
    code = -40006
    http_status = 500
    reason = "AES encryption failed"


class DecryptError(WeComError):
    code = -40007
    reason = "AES decryption failed"


class IllegalBufferError(WeComError):
    """The decrypted buffer has bad padding or a bad length (official name: IllegalBuffer)."""

    code = -40008
    reason = "decrypted buffer is invalid"


class EncodeBase64Error(WeComError):
    code = -40009
    http_status = 500
    reason = "base64 encoding failed"


class DecodeBase64Error(WeComError):
    code = -40010
    reason = "base64 decoding failed"


class GenerateXmlError(WeComError):
    code = -40011
    http_status = 500
    reason = "cannot build the reply XML"


class MessageError(WeComError):
    """The decrypted message itself is not acceptable XML (broken, a DTD, too deep...)."""

    code = -40002
    reason = "cannot parse the decrypted message"


__all__ = [
    "ComputeSignatureError",
    "DecodeBase64Error",
    "DecryptError",
    "EncodeBase64Error",
    "EncryptError",
    "EnvelopeError",
    "GenerateXmlError",
    "IllegalBufferError",
    "InvalidAESKeyError",
    "MessageError",
    "ReceiveIdError",
    "SignatureError",
    "WeComError",
]
