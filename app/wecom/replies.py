"""Passive replies (doc 90241) and their ``message/send`` equivalents.

A reply renders the *plaintext* XML; the caller encrypts it (CallbackCrypto.encrypt_reply).
``ToUserName`` is the member (the inbound ``FromUserName``), ``FromUserName`` the CorpID.
All text goes through :func:`~app.wecom.xmlsafe.cdata`, so user content cannot break the XML.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .xmlsafe import cdata, escape_text, strip_invalid_xml_chars

#: Byte limit of a text reply / text message (UTF-8), doc 96469 and 90236.
TEXT_LIMIT = 2048
#: Most articles a news reply may carry (45008 wording; passive-reply limit UNCONFIRMED).
MAX_ARTICLES = 8


def truncate_utf8(text: str, limit: int) -> str:
    """Longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: _boundary(data, limit)].decode("utf-8")


def split_utf8(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-8 bytes that join back to ``text``.

    Never cuts inside a character's encoding; when a newline falls in the last quarter of a
    chunk, the chunk ends right after it. Empty text gives no chunks. (A character may still be
    separated from a following combining mark or emoji modifier.)
    """
    if limit < 4:
        raise ValueError("limit must be at least 4 bytes (the longest UTF-8 sequence)")
    data = text.encode("utf-8")
    chunks: list[str] = []
    start = 0
    while len(data) - start > limit:
        end = _boundary(data, start + limit)
        newline = data.rfind(b"\n", end - (end - start) // 4, end)
        if newline != -1:
            end = newline + 1
        chunks.append(data[start:end].decode("utf-8"))
        start = end
    if start < len(data):
        chunks.append(data[start:].decode("utf-8"))
    return chunks


def _boundary(data: bytes, index: int) -> int:
    """Move ``index`` back to the start of the UTF-8 sequence it falls in."""
    while 0 < index < len(data) and data[index] & 0xC0 == 0x80:
        index -= 1
    return index


def _clean(text: str, name: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, not {type(text).__name__}")
    return strip_invalid_xml_chars(text)


class Reply(ABC):
    """A passive reply. Subclasses are frozen dataclasses."""

    msg_type: ClassVar[str]

    def render(self, to_user: str, from_user: str, create_time: int) -> str:
        """Plaintext reply XML: to the member ``to_user``, from the CorpID ``from_user``."""
        if isinstance(create_time, bool) or not isinstance(create_time, int):
            raise TypeError("create_time must be an int (unix seconds)")
        return (
            "<xml>"
            f"<ToUserName>{cdata(_clean(to_user, 'to_user'))}</ToUserName>"
            f"<FromUserName>{cdata(_clean(from_user, 'from_user'))}</FromUserName>"
            f"<CreateTime>{escape_text(str(create_time))}</CreateTime>"
            f"<MsgType>{cdata(self.msg_type)}</MsgType>"
            f"{self._body_xml()}"
            "</xml>"
        )

    @abstractmethod
    def _body_xml(self) -> str: ...

    @abstractmethod
    def to_api_message(self) -> dict[str, Any] | None:
        """The ``msgtype`` + payload part of a ``message/send`` body, or None if there is none."""


@dataclass(frozen=True)
class TextReply(Reply):
    """Text; rendering cuts it to 2048 UTF-8 bytes on a character boundary."""

    content: str
    msg_type: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        _clean(self.content, "content")

    def _body_xml(self) -> str:
        content = truncate_utf8(strip_invalid_xml_chars(self.content), TEXT_LIMIT)
        return f"<Content>{cdata(content)}</Content>"

    def to_api_message(self) -> dict[str, Any]:
        """Full content: a sender must split long text with :func:`split_utf8` itself."""
        return {"msgtype": "text", "text": {"content": strip_invalid_xml_chars(self.content)}}


@dataclass(frozen=True)
class _MediaReply(Reply):
    media_id: str
    _element: ClassVar[str]

    def __post_init__(self) -> None:
        _clean(self.media_id, "media_id")

    def _body_xml(self) -> str:
        return f"<{self._element}><MediaId>{cdata(self.media_id)}</MediaId></{self._element}>"

    def to_api_message(self) -> dict[str, Any]:
        return {"msgtype": self.msg_type, self.msg_type: {"media_id": self.media_id}}


@dataclass(frozen=True)
class ImageReply(_MediaReply):
    msg_type: ClassVar[str] = "image"
    _element: ClassVar[str] = "Image"


@dataclass(frozen=True)
class VoiceReply(_MediaReply):
    msg_type: ClassVar[str] = "voice"
    _element: ClassVar[str] = "Voice"


@dataclass(frozen=True)
class VideoReply(Reply):
    media_id: str
    title: str = ""
    description: str = ""
    msg_type: ClassVar[str] = "video"

    def __post_init__(self) -> None:
        for name in ("media_id", "title", "description"):
            _clean(getattr(self, name), name)

    def _body_xml(self) -> str:
        return (
            "<Video>"
            f"<MediaId>{cdata(self.media_id)}</MediaId>"
            f"<Title>{cdata(self.title)}</Title>"
            f"<Description>{cdata(self.description)}</Description>"
            "</Video>"
        )

    def to_api_message(self) -> dict[str, Any]:
        video = {"media_id": self.media_id, "title": self.title, "description": self.description}
        return {"msgtype": "video", "video": video}


@dataclass(frozen=True)
class Article:
    """One news item; the first article of a news message is shown with the large picture."""

    title: str
    description: str = ""
    url: str = ""
    pic_url: str = ""

    def __post_init__(self) -> None:
        for name in ("title", "description", "url", "pic_url"):
            _clean(getattr(self, name), name)


@dataclass(frozen=True)
class NewsReply(Reply):
    """One to eight articles (stored as a tuple so the reply stays immutable)."""

    articles: Sequence[Article]
    msg_type: ClassVar[str] = "news"

    def __post_init__(self) -> None:
        items = tuple(self.articles)
        if not all(isinstance(item, Article) for item in items):
            raise TypeError("articles must be Article instances")
        if not 1 <= len(items) <= MAX_ARTICLES:
            raise ValueError(f"a news reply needs 1 to {MAX_ARTICLES} articles, got {len(items)}")
        object.__setattr__(self, "articles", items)

    def _body_xml(self) -> str:
        items = "".join(
            "<item>"
            f"<Title>{cdata(a.title)}</Title>"
            f"<Description>{cdata(a.description)}</Description>"
            f"<PicUrl>{cdata(a.pic_url)}</PicUrl>"
            f"<Url>{cdata(a.url)}</Url>"
            "</item>"
            for a in self.articles
        )
        return f"<ArticleCount>{len(self.articles)}</ArticleCount><Articles>{items}</Articles>"

    def to_api_message(self) -> dict[str, Any]:
        articles = [
            {"title": a.title, "description": a.description, "url": a.url, "picurl": a.pic_url}
            for a in self.articles
        ]
        return {"msgtype": "news", "news": {"articles": articles}}


@dataclass(frozen=True)
class UpdateButtonReply(Reply):
    """New (greyed) caption of the clicked button; only as the reply to a template_card_event."""

    replace_name: str
    msg_type: ClassVar[str] = "update_button"

    def __post_init__(self) -> None:
        _clean(self.replace_name, "replace_name")

    def _body_xml(self) -> str:
        return f"<Button><ReplaceName>{cdata(self.replace_name)}</ReplaceName></Button>"

    def to_api_message(self) -> None:
        """No ``message/send`` equivalent (use ``message/update_template_card`` instead)."""
        return None


# type → (class, XML wrapper element, {argument: XML field}, {argument: message/send field})
_DICT_FIELDS: dict[str, tuple[type[Reply], str, dict[str, str], dict[str, str]]] = {
    "text": (TextReply, "", {"content": "Content"}, {"content": "content"}),
    "image": (ImageReply, "Image", {"media_id": "MediaId"}, {"media_id": "media_id"}),
    "voice": (VoiceReply, "Voice", {"media_id": "MediaId"}, {"media_id": "media_id"}),
    "video": (
        VideoReply,
        "Video",
        {"media_id": "MediaId", "title": "Title", "description": "Description"},
        {"media_id": "media_id", "title": "title", "description": "description"},
    ),
    "update_button": (UpdateButtonReply, "Button", {"replace_name": "ReplaceName"}, {}),
}
_ARTICLE_XML = {"title": "Title", "description": "Description", "url": "Url", "pic_url": "PicUrl"}
_ARTICLE_API = {"title": "title", "description": "description", "url": "url", "pic_url": "picurl"}
_OPTIONAL = {"title", "description", "url", "pic_url"}


def to_reply(value: object) -> Reply | None:
    """Turn what a handler returned into a reply (None means "acknowledge, no reply").

    Accepted:

    * ``None`` or ``""`` → None; any other ``str`` → TextReply;
    * a :class:`Reply` → itself;
    * a dict with WeCom's XML field names, flat: ``{"MsgType": "text", "Content": ...}``,
      ``{"MsgType": "image" | "voice", "MediaId": ...}``, ``{"MsgType": "video", "MediaId": ...,
      "Title": ..., "Description": ...}``, ``{"MsgType": "news", "Articles": [{"Title": ...,
      "Description": ..., "Url": ..., "PicUrl": ...}]}``, ``{"MsgType": "update_button",
      "ReplaceName": ...}``; or nested as in the reply XML (``"Image": {"MediaId": ...}``,
      ``"Articles": {"item": [...]}``), so a parsed reply converts back;
    * a dict in the ``message/send`` shape that :meth:`Reply.to_api_message` returns, e.g.
      ``{"msgtype": "image", "image": {"media_id": ...}}``; the payload may also sit at the top
      level (``{"msgtype": "image", "media_id": ...}``).

    Other keys are ignored. A dict that names an unknown type or lacks a required field raises
    ValueError; any other kind of value raises TypeError.
    """
    if value is None or isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return TextReply(value) if value else None
    if isinstance(value, Mapping):
        return _reply_from_mapping(value)
    raise TypeError(
        f"cannot make a reply from {type(value).__name__}: return None, str, a Reply or a dict"
    )


def _reply_from_mapping(value: Mapping[str, Any]) -> Reply:
    if "MsgType" in value:
        kind, fields, api_style = value["MsgType"], value, False
    elif "msgtype" in value:
        kind, api_style = value["msgtype"], True
        nested = value.get(kind) if isinstance(kind, str) else None
        fields = nested if isinstance(nested, Mapping) else value
    else:
        raise ValueError('a reply dict needs "MsgType" (XML field names) or "msgtype" (API shape)')

    if kind == "news":
        return NewsReply(_articles(fields, api_style))
    spec = _DICT_FIELDS.get(kind) if isinstance(kind, str) else None
    if spec is None or (api_style and not spec[3]):
        raise ValueError(f"unsupported reply type {kind!r}")
    cls, wrapper, xml_names, api_names = spec
    if api_style:
        return cls(**_arguments(fields, api_names))
    nested = fields.get(wrapper) if wrapper else None
    return cls(**_arguments(nested if isinstance(nested, Mapping) else fields, xml_names))


def _articles(fields: Mapping[str, Any], api_style: bool) -> list[Article]:
    items = fields.get("articles" if api_style else "Articles")
    if isinstance(items, Mapping) and not api_style:  # the XML nesting: Articles.item
        items = items.get("item")
    if not isinstance(items, list):
        raise ValueError("a news reply needs a list of articles")
    names = _ARTICLE_API if api_style else _ARTICLE_XML
    articles = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError("each article must be a dict")
        articles.append(Article(**_arguments(item, names)))
    return articles


def _arguments(fields: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    arguments = {}
    for argument, key in names.items():
        if key in fields:
            arguments[argument] = fields[key]
        elif argument not in _OPTIONAL:
            raise ValueError(f"a reply dict lacks {key!r}")
    return arguments


__all__ = [
    "MAX_ARTICLES",
    "TEXT_LIMIT",
    "Article",
    "ImageReply",
    "NewsReply",
    "Reply",
    "TextReply",
    "UpdateButtonReply",
    "VideoReply",
    "VoiceReply",
    "split_utf8",
    "to_reply",
    "truncate_utf8",
]
