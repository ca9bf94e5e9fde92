"""One callback endpoint's crypto: verify the GET, open the POST, seal the passive reply."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable

from .aes import MessageCrypto
from .envelope import build_reply_envelope, parse_envelope
from .signature import compute_signature, verify_signature

TOKEN_MAX_LENGTH = 32


class InvalidTokenError(ValueError):
    """The configured Token is unusable. The message never contains the Token itself."""


def validate_token(token: str) -> None:
    """Token rules of the admin console (doc 90930): 1-32 ASCII letters or digits."""
    if not isinstance(token, str):
        raise InvalidTokenError(f"Token must be a string, not {type(token).__name__}")
    if not token:
        raise InvalidTokenError("Token is empty")
    if len(token) > TOKEN_MAX_LENGTH:
        raise InvalidTokenError(
            f"Token is {len(token)} characters long; at most {TOKEN_MAX_LENGTH} are allowed"
        )
    if not (token.isascii() and token.isalnum()):
        raise InvalidTokenError("Token may contain only letters A-Z, a-z and digits 0-9")


def random_nonce() -> str:
    """A ten-digit decimal nonce, the form WeCom itself uses."""
    return str(10**9 + secrets.randbelow(9 * 10**9))


class CallbackCrypto:
    """Token + EncodingAESKey + receiveid of one endpoint; build it once at start-up.

    ``receive_id`` is the CorpID for self-built apps and kf, the SuiteID for third-party
    instruction callbacks, and ``""`` for the intelligent bot. Bad settings raise at once:
    InvalidTokenError (a ValueError) or InvalidAESKeyError. Every method raises a
    :class:`~app.wecom.errors.WeComError` subclass carrying the official code and the HTTP
    status to answer.
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = random_nonce,
    ) -> None:
        validate_token(token)
        if not isinstance(receive_id, str):
            raise TypeError("receive_id must be a str (use '' for the intelligent bot)")
        self._token = token
        self._crypto = MessageCrypto(encoding_aes_key, receive_id, random_bytes)
        self._clock = clock
        self._nonce_factory = nonce_factory

    @property
    def receive_id(self) -> str:
        return self._crypto.receive_id

    def __repr__(self) -> str:  # never show the Token or the key
        return f"{type(self).__name__}(receive_id={self.receive_id!r})"

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Check the GET and return the decrypted echostr: the exact response body to send.

        Pass the query values URL-decoded once, as received.
        """
        verify_signature(self._token, timestamp, nonce, echostr, msg_signature)
        return self._crypto.decrypt(echostr)

    def decrypt_callback(
        self, body: bytes | str, msg_signature: str, timestamp: str, nonce: str
    ) -> str:
        """Check a POST (XML or bot JSON envelope) and return the decrypted plaintext."""
        encrypted = parse_envelope(body)["Encrypt"]
        verify_signature(self._token, timestamp, nonce, encrypted, msg_signature)
        return self._crypto.decrypt(encrypted)

    def encrypt_reply(
        self, reply_xml: str | bytes, nonce: str | None = None, timestamp: str | None = None
    ) -> str:
        """Encrypt a plaintext reply and wrap it in the signed XML envelope (§3.2).

        ``nonce`` and ``timestamp`` default to fresh values; the request's own may be reused.
        """
        encrypted = self._crypto.encrypt(reply_xml)
        if timestamp is None:
            timestamp = str(int(self._clock()))
        if nonce is None:
            nonce = self._nonce_factory()
        signature = compute_signature(self._token, timestamp, nonce, encrypted)
        return build_reply_envelope(encrypted, signature, timestamp, nonce)


__all__ = ["CallbackCrypto", "InvalidTokenError", "random_nonce", "validate_token"]
