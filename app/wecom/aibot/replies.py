"""Bot replies (doc 101031) and active replies through ``response_url`` (doc 101138).

Handlers return these objects; :func:`stream_payload` and the ``payload`` methods render the
plaintext JSON that :meth:`BotCrypto.seal` encrypts. Which reply may answer which callback is
decided by the router (:mod:`app.routing.bot_router`), not here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.wecom.replies import truncate_utf8

from .errors import BotReplyError

#: Bytes of a stream's content, and of a markdown active reply (UTF-8).
CONTENT_LIMIT = 20480
#: Images a final stream frame may carry, and the size of one (raw bytes, JPG or PNG).
MAX_IMAGES = 10
IMAGE_LIMIT = 10 * 1024 * 1024
#: Bytes of a feedback id.
FEEDBACK_ID_LIMIT = 256
#: task_id of an interactive card: letters, digits, ``_-@``, at most 128 bytes (doc 101032).
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
CARD_TYPES = frozenset(
    {
        "text_notice",
        "news_notice",
        "button_interaction",
        "vote_interaction",
        "multiple_interaction",
    }
)
_INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})


def clean_text(text: str) -> str:
    """``text`` without lone surrogates (they cannot be encoded, so nothing could be sent)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    return text.encode("utf-8", "replace").decode("utf-8")


def cut_content(text: str) -> str:
    """The longest prefix of ``text`` that fits a stream or markdown (20480 bytes)."""
    return truncate_utf8(clean_text(text), CONTENT_LIMIT)


def _feedback(feedback_id: str | None) -> dict[str, Any]:
    if feedback_id is None:
        return {}
    if not isinstance(feedback_id, str) or not feedback_id:
        raise BotReplyError("feedback_id must be a non-empty string")
    if len(feedback_id.encode("utf-8")) > FEEDBACK_ID_LIMIT:
        raise BotReplyError(f"feedback_id is longer than {FEEDBACK_ID_LIMIT} bytes")
    return {"feedback": {"id": feedback_id}}


@dataclass(frozen=True)
class StreamImage:
    """An image for the final frame of a stream (``msg_item``): raw JPG or PNG bytes."""

    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes) or not self.data:
            raise BotReplyError("an image must be non-empty bytes")
        if len(self.data) > IMAGE_LIMIT:
            raise BotReplyError(f"an image may have at most {IMAGE_LIMIT} bytes")
        if not (self.data.startswith(b"\xff\xd8\xff") or self.data.startswith(b"\x89PNG")):
            raise BotReplyError("an image must be a JPG or PNG")

    def item(self) -> dict[str, Any]:
        return {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(self.data).decode("ascii"),
                "md5": hashlib.md5(self.data, usedforsecurity=False).hexdigest(),
            },
        }


def stream_payload(
    stream_id: str,
    content: str,
    finish: bool,
    images: Iterable[Mapping[str, Any]] = (),
    feedback_id: str | None = None,
) -> dict[str, Any]:
    """One stream frame. ``content`` is everything so far (cut to 20480 bytes); ``images``
    (items from :meth:`StreamImage.item`) only go out on the final frame."""
    stream: dict[str, Any] = {
        "id": stream_id,
        "finish": bool(finish),
        "content": cut_content(content),
    }
    items = list(images)
    if finish and items:
        stream["msg_item"] = items[:MAX_IMAGES]
    stream.update(_feedback(feedback_id))
    return {"msgtype": "stream", "stream": stream}


def card_payload(card: Mapping[str, Any], feedback_id: str | None = None) -> dict[str, Any]:
    """A checked copy of a TemplateCard (the essentials of doc 101032)."""
    if not isinstance(card, Mapping):
        raise BotReplyError("a template card must be a mapping")
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise BotReplyError(f"card_type must be one of {sorted(CARD_TYPES)}, got {card_type!r}")
    task_id = card.get("task_id")
    if (card_type in _INTERACTIVE or "action_menu" in card or task_id is not None) and not (
        isinstance(task_id, str) and _TASK_ID.fullmatch(task_id)
    ):
        raise BotReplyError(
            "task_id (letters, digits, _-@, at most 128) is required for an interactive card"
        )
    return {**dict(card), **_feedback(feedback_id)}


@dataclass(frozen=True)
class WelcomeText:
    """The welcome text: only a reply to ``enter_chat``."""

    content: str

    def payload(self) -> dict[str, Any]:
        return {"msgtype": "text", "text": {"content": cut_content(self.content)}}


@dataclass(frozen=True)
class StreamReply:
    """A streamed answer: ``content`` is a string (one finished frame) or an iterable of text
    chunks (a generator); chunks may also be :class:`StreamImage` for the final frame."""

    content: str | Iterable[Any] = ""
    images: tuple[StreamImage, ...] = ()
    feedback_id: str | None = None

    def __post_init__(self) -> None:
        _feedback(self.feedback_id)


@dataclass(frozen=True)
class TemplateCardReply:
    """A template card answering a message or ``enter_chat``."""

    card: Mapping[str, Any]
    feedback_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "msgtype": "template_card",
            "template_card": card_payload(self.card, self.feedback_id),
        }


@dataclass(frozen=True)
class StreamWithCardReply:
    """A stream plus a card, sent once, with the first frame or the first refresh after it is
    known (``stream_with_template_card``)."""

    card: Mapping[str, Any]
    content: str | Iterable[Any] = ""
    images: tuple[StreamImage, ...] = ()
    feedback_id: str | None = None
    card_feedback_id: str | None = None

    def __post_init__(self) -> None:
        card_payload(self.card, self.card_feedback_id)
        _feedback(self.feedback_id)

    def card_json(self) -> dict[str, Any]:
        return card_payload(self.card, self.card_feedback_id)


@dataclass(frozen=True)
class UpdateCardReply:
    """Replaces the clicked card (reply to ``template_card_event`` only). ``userids`` limits the
    replacement to those users; the card's ``task_id`` must be the clicked card's."""

    card: Mapping[str, Any]
    userids: tuple[str, ...] | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"response_type": "update_template_card"}
        if self.userids is not None:
            body["userids"] = list(self.userids)
        body["template_card"] = card_payload(self.card)
        return body


@dataclass(frozen=True)
class Markdown:
    """An active reply through ``response_url``: markdown of at most 20480 bytes."""

    content: str
    feedback_id: str | None = None

    def payload(self) -> dict[str, Any]:
        markdown: dict[str, Any] = {"content": cut_content(self.content)}
        markdown.update(_feedback(self.feedback_id))
        return {"msgtype": "markdown", "markdown": markdown}


def with_card(frame: dict[str, Any], card: Mapping[str, Any]) -> dict[str, Any]:
    """A stream frame turned into ``stream_with_template_card``."""
    return {
        "msgtype": "stream_with_template_card",
        "stream": frame["stream"],
        "template_card": dict(card),
    }


__all__ = [
    "CARD_TYPES",
    "CONTENT_LIMIT",
    "IMAGE_LIMIT",
    "MAX_IMAGES",
    "Markdown",
    "StreamImage",
    "StreamReply",
    "StreamWithCardReply",
    "TemplateCardReply",
    "UpdateCardReply",
    "WelcomeText",
    "card_payload",
    "clean_text",
    "cut_content",
    "stream_payload",
    "with_card",
]
