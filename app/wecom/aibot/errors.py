"""Typed errors of the intelligent bot's JSON protocol, in the style of :mod:`app.wecom.errors`.

Each carries the official return code (the JSON library reuses the XML one's numbers) and the
HTTP status a server should answer with.
"""

from __future__ import annotations

from app.wecom.errors import EnvelopeError, MessageError, WeComError


class BotEnvelopeError(EnvelopeError):
    """The POST body is not ``{"encrypt": "..."}``."""

    reason = "cannot parse the bot's JSON envelope"


class BotMessageError(MessageError):
    """The decrypted bot message is not the JSON WeCom documents."""

    reason = "cannot parse the decrypted bot message"


class BotReplyError(WeComError):
    """A reply cannot be built (bad card, image too large, …): a programming error, not input."""

    code = -40011
    http_status = 500
    reason = "cannot build the bot reply"


__all__ = ["BotEnvelopeError", "BotMessageError", "BotReplyError"]
