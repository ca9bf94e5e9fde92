"""The bot's encrypted JSON envelopes: ``{"encrypt": …}`` in, ``{"encrypt", "msgsignature",
"timestamp", "nonce"}`` out (docs 101033 and 101031).

The crypto is the classic callback scheme with the receiveid fixed to the empty string, which is
checked on every message: a ciphertext made for a CorpID is refused with ReceiveIdError.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from app.wecom import jsonsafe
from app.wecom.aes import MessageCrypto
from app.wecom.callback import validate_token
from app.wecom.signature import compute_signature, verify_signature

from .errors import BotEnvelopeError

#: The receiveid of an enterprise-internal intelligent bot (doc 101033).
BOT_RECEIVE_ID = ""
#: An envelope is one flat object; anything deeper is not WeCom's.
ENVELOPE_DEPTH = 2


def parse_bot_envelope(body: bytes | str, max_bytes: int) -> str:
    """The ``encrypt`` value of a POST body, or BotEnvelopeError (HTTP 400)."""
    document = jsonsafe.loads(
        body, max_bytes=max_bytes, max_depth=ENVELOPE_DEPTH, error=BotEnvelopeError
    )
    if not isinstance(document, dict):
        raise BotEnvelopeError("the envelope must be a JSON object")
    encrypted = document.get("encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise BotEnvelopeError('no "encrypt" string in the envelope')
    return encrypted


class BotCrypto:
    """Token + EncodingAESKey of one bot; build it once. Secrets never appear in its repr.

    Raises InvalidTokenError (a ValueError) or InvalidAESKeyError for bad settings; every method
    raises a :class:`~app.wecom.errors.WeComError` subclass for bad input.
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        validate_token(token)
        self._token = token
        self._crypto = MessageCrypto(encoding_aes_key, BOT_RECEIVE_ID, random_bytes)
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Check the GET and return the decrypted echostr, the exact body to answer."""
        verify_signature(self._token, timestamp, nonce, echostr, msg_signature)
        return self._crypto.decrypt(echostr)

    def open(
        self, body: bytes | str, msg_signature: str, timestamp: str, nonce: str, max_bytes: int
    ) -> str:
        """Check a POST and return the decrypted plaintext (JSON text, not yet parsed)."""
        encrypted = parse_bot_envelope(body, max_bytes)
        verify_signature(self._token, timestamp, nonce, encrypted, msg_signature)
        return self._crypto.decrypt(encrypted)

    def seal(self, reply: Mapping[str, Any], nonce: str, timestamp: str | None = None) -> bytes:
        """The JSON body of an encrypted passive reply.

        ``nonce`` must be the callback's own (doc 101031). The timestamp goes out as a string of
        digits, as the official JSON library sends it (the doc's example shows a number; the
        signature covers the digits either way).
        """
        plain = json.dumps(reply, ensure_ascii=False, separators=(",", ":"))
        encrypted = self._crypto.encrypt(plain)
        if timestamp is None:
            timestamp = str(int(self._clock()))
        signature = compute_signature(self._token, timestamp, nonce, encrypted)
        envelope = {
            "encrypt": encrypted,
            "msgsignature": signature,
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return json.dumps(envelope, separators=(",", ":")).encode("ascii")


__all__ = ["BOT_RECEIVE_ID", "BotCrypto", "parse_bot_envelope"]
