"""The WeCom intelligent bot (智能机器人, API mode): JSON callbacks and replies. Pure: no I/O.

Crypto is the classic callback scheme with receiveid ``""``; the envelopes, messages and replies
are JSON (docs 101033, 100719, 101027, 101031, 101138).
"""

from .envelope import BOT_RECEIVE_ID, BotCrypto, parse_bot_envelope
from .errors import BotEnvelopeError, BotMessageError, BotReplyError
from .messages import (
    MESSAGE_TYPES,
    callback_kind,
    conversation_id,
    event_details,
    event_type,
    parse_bot_message,
    sender_id,
    strip_mention,
    text_of,
)
from .replies import (
    CONTENT_LIMIT,
    Markdown,
    StreamImage,
    StreamReply,
    StreamWithCardReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
    card_payload,
    cut_content,
    stream_payload,
    with_card,
)

__all__ = [
    "BOT_RECEIVE_ID",
    "CONTENT_LIMIT",
    "MESSAGE_TYPES",
    "BotCrypto",
    "BotEnvelopeError",
    "BotMessageError",
    "BotReplyError",
    "Markdown",
    "StreamImage",
    "StreamReply",
    "StreamWithCardReply",
    "TemplateCardReply",
    "UpdateCardReply",
    "WelcomeText",
    "callback_kind",
    "card_payload",
    "conversation_id",
    "cut_content",
    "event_details",
    "event_type",
    "parse_bot_envelope",
    "parse_bot_message",
    "sender_id",
    "stream_payload",
    "strip_mention",
    "text_of",
    "with_card",
]
