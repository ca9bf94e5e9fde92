"""Decrypted bot callbacks → dicts with WeCom's own field names (docs 100719, 101027).

The dict is the JSON WeCom sent, checked: every field the service relies on has the documented
type, so handlers can index it without guarding. Unknown message types and events pass through.
A value that contradicts the docs (a text without ``text.content``, a refresh without
``stream.id`` …) raises BotMessageError (HTTP 400).
"""

from __future__ import annotations

import re
from typing import Any

from app.wecom import jsonsafe

from .errors import BotMessageError

Message = dict[str, Any]

#: Messages a user sends (each may carry a ``quote``); ``stream`` is the refresh callback.
MESSAGE_TYPES = frozenset({"text", "image", "mixed", "voice", "file", "video"})
#: The object each message type carries, and its required string field.
_PAYLOAD_FIELD = {
    "text": "content",
    "voice": "content",
    "image": "url",
    "file": "url",
    "video": "url",
}
#: Deepest decrypted message accepted (a template_card_event has 6 levels).
MESSAGE_DEPTH = 12

_LEADING_MENTION = re.compile(r"^\s*@[^\s@]+\s+")
_TRAILING_MENTION = re.compile(r"\s*@[^\s@.]+\s*$")


def _require(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BotMessageError(f"{where} must be {names}, got {type(value).__name__}")
    return value


def _optional_str(container: dict[str, Any], field: str, where: str) -> None:
    if field in container and container[field] is not None:
        _require(container[field], str, f"{where}.{field}")


def _check_content(message: Message, msgtype: str, where: str) -> None:
    """The payload object of one message type (also used for ``quote`` and mixed items)."""
    if msgtype in _PAYLOAD_FIELD:
        payload = _require(message.get(msgtype), dict, f"{where}.{msgtype}")
        _require(
            payload.get(_PAYLOAD_FIELD[msgtype]),
            str,
            f"{where}.{msgtype}.{_PAYLOAD_FIELD[msgtype]}",
        )
    elif msgtype == "mixed":
        mixed = message.get("mixed")
        if isinstance(mixed, str):  # seen described as a JSON string: parse it defensively
            mixed = jsonsafe.loads(
                mixed, max_bytes=len(mixed) * 4 + 2, max_depth=6, error=BotMessageError
            )
            message["mixed"] = mixed
        mixed = _require(mixed, dict, f"{where}.mixed")
        items = _require(mixed.get("msg_item"), list, f"{where}.mixed.msg_item")
        for index, item in enumerate(items):
            item_where = f"{where}.mixed.msg_item[{index}]"
            _require(item, dict, item_where)
            item_type = _require(item.get("msgtype"), str, f"{item_where}.msgtype")
            if item_type in ("text", "image"):
                _check_content(item, item_type, item_where)


def _check_event(message: Message) -> None:
    event = _require(message.get("event"), dict, "event")
    event_type = _require(event.get("eventtype"), str, "event.eventtype")
    if not event_type:
        raise BotMessageError("event.eventtype is empty")
    details = event.get(event_type)
    if details is None:
        return
    details = _require(details, dict, f"event.{event_type}")
    where = f"event.{event_type}"
    if event_type == "template_card_event":
        for field in ("card_type", "event_key", "task_id"):
            _optional_str(details, field, where)
        selected = details.get("selected_items")
        if selected is not None:
            items = _require(selected, dict, f"{where}.selected_items").get("selected_item", [])
            if isinstance(items, dict):
                items = selected["selected_item"] = [items]
            for item in _require(items, list, f"{where}.selected_items.selected_item"):
                _require(item, dict, f"{where}.selected_items.selected_item[]")
                ids = item.get("option_ids")
                if isinstance(ids, dict) and isinstance(ids.get("option_id"), str):
                    ids["option_id"] = [ids["option_id"]]
    elif event_type == "feedback_event":
        _optional_str(details, "id", where)
        _optional_str(details, "content", where)


def parse_bot_message(plaintext: str | bytes, max_bytes: int = 1024 * 1024) -> Message:
    """Parse and check one decrypted callback."""
    message = jsonsafe.loads(
        plaintext, max_bytes=max_bytes, max_depth=MESSAGE_DEPTH, error=BotMessageError
    )
    if not isinstance(message, dict):
        raise BotMessageError("the decrypted message must be a JSON object")
    msgtype = _require(message.get("msgtype"), str, "msgtype")
    if not msgtype:
        raise BotMessageError("msgtype is empty")
    for field in ("msgid", "aibotid", "chatid", "chattype", "response_url"):
        _optional_str(message, field, "message")
    sender = message.get("from")
    if sender is not None:
        _require(sender, dict, "from")
        _optional_str(sender, "userid", "from")
    if msgtype == "stream":
        stream = _require(message.get("stream"), dict, "stream")
        if not _require(stream.get("id"), str, "stream.id"):
            raise BotMessageError("stream.id is empty")
    elif msgtype == "event":
        _check_event(message)
    else:
        _check_content(message, msgtype, "message")
    quote = message.get("quote")
    if quote is not None:
        _require(quote, dict, "quote")
        quote_type = _require(quote.get("msgtype"), str, "quote.msgtype")
        _check_content(quote, quote_type, "quote")
    return message


# -- reading a parsed message ------------------------------------------------------------------


def event_type(message: Message) -> str:
    """``event.eventtype`` of an event, else ``""``."""
    if message.get("msgtype") != "event":
        return ""
    return str(message["event"].get("eventtype") or "")


def event_details(message: Message) -> dict[str, Any]:
    """The object named by ``event.eventtype`` (``event.template_card_event`` …), or ``{}``."""
    name = event_type(message)
    details = message["event"].get(name) if name else None
    return details if isinstance(details, dict) else {}


def callback_kind(message: Message) -> str:
    """``message`` (a user message), ``refresh`` (stream refresh), or the event's type."""
    msgtype = message["msgtype"]
    if msgtype == "stream":
        return "refresh"
    if msgtype == "event":
        return event_type(message)
    return "message"


def sender_id(message: Message) -> str:
    sender = message.get("from")
    return str(sender.get("userid") or "") if isinstance(sender, dict) else ""


def conversation_id(message: Message) -> str:
    """The chat a message belongs to: ``chatid`` in a group, the user in a single chat."""
    chat = message.get("chatid")
    if message.get("chattype") == "group" and chat:
        return f"group:{chat}"
    return f"user:{sender_id(message)}"


def strip_mention(text: str) -> str:
    """Remove an ``@bot`` mention at the start or end (group text carries it, doc 100719).

    A trailing mention must not contain a dot, so ``write to a@b.com`` keeps its address."""
    return _TRAILING_MENTION.sub("", _LEADING_MENTION.sub("", text)).strip()


def text_of(message: Message) -> str:
    """What the user wrote: ``text.content`` (mention removed in groups), the text items of a
    ``mixed`` message joined by newlines, or the transcript of a ``voice`` message."""
    msgtype = message.get("msgtype")
    if msgtype == "text":
        text = message["text"]["content"]
    elif msgtype == "voice":
        text = message["voice"]["content"]
    elif msgtype == "mixed":
        parts = [
            item["text"]["content"]
            for item in message["mixed"]["msg_item"]
            if item.get("msgtype") == "text"
        ]
        text = "\n".join(parts)
    else:
        return ""
    return strip_mention(text) if message.get("chattype") == "group" else text.strip()


__all__ = [
    "MESSAGE_TYPES",
    "Message",
    "callback_kind",
    "conversation_id",
    "event_details",
    "event_type",
    "parse_bot_message",
    "sender_id",
    "strip_mention",
    "text_of",
]
