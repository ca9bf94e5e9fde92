"""Drop-in for the official Python 3 ``WXBizMsgCrypt`` class (weworkapi_python, callback_python3).

Same constructor, method names, argument order and ``(ret, value)`` results, so code written
against the official sample keeps working; underneath it is :class:`CallbackCrypto`.

What callers of the official class get, and get here too:

* ``VerifyURL`` and ``DecryptMsg`` return the plaintext as **bytes** (the official class
  slices the decrypted buffer and never decodes it); ``EncryptMsg`` returns a ``str``.
* On failure: ``(code, None)`` with the official code (-40001 … -40011).
* A bad EncodingAESKey makes the constructor raise (the official one raises its
  ``FormatException``; here :class:`InvalidAESKeyError`, also exported as ``FormatException``).

Deliberate differences:

* The constructor also rejects an invalid Token (empty, over 32 characters, not letters or
  digits) with :class:`InvalidTokenError`; the official class accepts any Token.
* PKCS#7 padding is checked (1..32, all pad bytes equal) and ``msg_len`` is bounded: such
  buffers give -40008, where the official class mis-slices and usually reports -40005.
* Bad base64 gives -40010 (the official class folds it into -40007); the key is decoded
  strictly (non-alphabet characters are refused, the official decoder skips them).
* The signature is compared in constant time and case-insensitively.
* ``DecryptMsg`` also accepts the intelligent bot's JSON envelope and ``bytes`` bodies.
* ``EncryptMsg`` accepts an ``int`` timestamp (the official class returns -40003 for one)
  and makes up a nonce when ``sNonce`` is None.
"""

from __future__ import annotations

from .callback import CallbackCrypto, InvalidTokenError
from .errors import InvalidAESKeyError, WeComError

#: The exception the official constructor raises for a bad EncodingAESKey.
FormatException = InvalidAESKeyError


class WXBizMsgCrypt:
    """The official API; see the module docstring for the (few) differences."""

    def __init__(self, sToken: str, sEncodingAESKey: str, sReceiveId: str) -> None:
        self._crypto = CallbackCrypto(sToken, sEncodingAESKey, sReceiveId)

    def VerifyURL(
        self, sMsgSignature: str, sTimeStamp: str, sNonce: str, sEchoStr: str
    ) -> tuple[int, bytes | None]:
        try:
            plain = self._crypto.verify_url(sMsgSignature, sTimeStamp, sNonce, sEchoStr)
        except WeComError as exc:
            return exc.code, None
        return 0, plain.encode("utf-8")

    def DecryptMsg(
        self, sPostData: str | bytes, sMsgSignature: str, sTimeStamp: str, sNonce: str
    ) -> tuple[int, bytes | None]:
        try:
            plain = self._crypto.decrypt_callback(sPostData, sMsgSignature, sTimeStamp, sNonce)
        except WeComError as exc:
            return exc.code, None
        return 0, plain.encode("utf-8")

    def EncryptMsg(
        self, sReplyMsg: str | bytes, sNonce: str | None, timestamp: str | int | None = None
    ) -> tuple[int, str | None]:
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        try:
            return 0, self._crypto.encrypt_reply(sReplyMsg, sNonce, timestamp)
        except WeComError as exc:
            return exc.code, None


__all__ = ["FormatException", "InvalidTokenError", "WXBizMsgCrypt"]
