"""What a 微信客服 handler may return, as kf/send_msg messages.

Each object becomes ``(msgtype, payload)``; kf/send_msg carries it as ``{"msgtype": msgtype,
msgtype: payload}`` (protocol reference §8.5). Byte limits are checked on the UTF-8 encoding when
the object is made, so a bad answer fails inside the handler's run, not later as a refused send.
Text is the exception: a long text is split into several messages by the sender.

The types and their conversions stay in one module (a little over 350 lines): :func:`from_api`
and :func:`to_kf_messages` choose among all of them, and each type is a few lines.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from app.wecom import Reply, to_reply

#: kf/send_msg text limit, UTF-8 bytes.
TEXT_LIMIT = 2048
#: A msgmenu carries at most this many items.
MENU_ITEMS = 10

_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Lone surrogates cannot be encoded as UTF-8 JSON: drop them."""
    return _SURROGATES.sub("", text)


def _check(value: Any, name: str, limit: int | None = None, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{name} must not be empty")
    if limit is not None and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise ValueError(f"{name} is longer than {limit} UTF-8 bytes")
    return value


class KfMessage(ABC):
    """One kf/send_msg message."""

    msgtype: ClassVar[str]

    @abstractmethod
    def payload(self) -> dict[str, Any]:
        """The object sent under the ``msgtype`` key."""

    def to_api(self) -> tuple[str, dict[str, Any]]:
        return self.msgtype, self.payload()


@dataclass(frozen=True)
class Text(KfMessage):
    content: str
    msgtype: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        _check(self.content, "content")

    def payload(self) -> dict[str, Any]:
        return {"content": clean_text(self.content)}


@dataclass(frozen=True)
class _Media(KfMessage):
    media_id: str

    def __post_init__(self) -> None:
        _check(self.media_id, "media_id")

    def payload(self) -> dict[str, Any]:
        return {"media_id": self.media_id}


@dataclass(frozen=True)
class Image(_Media):
    msgtype: ClassVar[str] = "image"


@dataclass(frozen=True)
class Voice(_Media):
    msgtype: ClassVar[str] = "voice"


@dataclass(frozen=True)
class Video(_Media):
    msgtype: ClassVar[str] = "video"


@dataclass(frozen=True)
class File(_Media):
    msgtype: ClassVar[str] = "file"


@dataclass(frozen=True)
class Link(KfMessage):
    title: str
    url: str
    thumb_media_id: str = ""
    desc: str = ""
    msgtype: ClassVar[str] = "link"

    def __post_init__(self) -> None:
        _check(self.title, "title", 128)
        _check(self.url, "url", 2048)
        _check(self.desc, "desc", 512, required=False)
        _check(self.thumb_media_id, "thumb_media_id", required=False)

    def payload(self) -> dict[str, Any]:
        fields = {"title": clean_text(self.title), "url": self.url}
        if self.desc:
            fields["desc"] = clean_text(self.desc)
        if self.thumb_media_id:
            fields["thumb_media_id"] = self.thumb_media_id
        return fields


@dataclass(frozen=True)
class MiniProgram(KfMessage):
    appid: str
    title: str
    thumb_media_id: str
    pagepath: str
    msgtype: ClassVar[str] = "miniprogram"

    def __post_init__(self) -> None:
        _check(self.appid, "appid")
        _check(self.title, "title", 64)
        _check(self.thumb_media_id, "thumb_media_id")
        _check(self.pagepath, "pagepath")

    def payload(self) -> dict[str, Any]:
        return {
            "appid": self.appid,
            "title": clean_text(self.title),
            "thumb_media_id": self.thumb_media_id,
            "pagepath": self.pagepath,
        }


@dataclass(frozen=True)
class Location(KfMessage):
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""
    msgtype: ClassVar[str] = "location"

    def __post_init__(self) -> None:
        for name in ("latitude", "longitude"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number")
        _check(self.name, "name", required=False)
        _check(self.address, "address", required=False)

    def payload(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"latitude": self.latitude, "longitude": self.longitude}
        if self.name:
            fields["name"] = clean_text(self.name)
        if self.address:
            fields["address"] = clean_text(self.address)
        return fields


# -- msgmenu ---------------------------------------------------------------------------------------
class MenuItem(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def fields(self) -> dict[str, Any]: ...

    def to_api(self) -> dict[str, Any]:
        return {"type": self.kind, self.kind: self.fields()}


@dataclass(frozen=True)
class MenuClick(MenuItem):
    """A button; the customer's click comes back as a text message with ``menu_id`` = ``id``."""

    id: str
    content: str
    kind: ClassVar[str] = "click"

    def __post_init__(self) -> None:
        _check(self.id, "id", 64)
        _check(self.content, "content", 128)

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "content": clean_text(self.content)}


@dataclass(frozen=True)
class MenuView(MenuItem):
    url: str
    content: str
    kind: ClassVar[str] = "view"

    def __post_init__(self) -> None:
        _check(self.url, "url", 2048)
        _check(self.content, "content", 1024)

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "content": clean_text(self.content)}


@dataclass(frozen=True)
class MenuMiniProgram(MenuItem):
    appid: str
    pagepath: str
    content: str
    kind: ClassVar[str] = "miniprogram"

    def __post_init__(self) -> None:
        _check(self.appid, "appid")
        _check(self.pagepath, "pagepath")
        _check(self.content, "content", 1024)

    def fields(self) -> dict[str, Any]:
        return {"appid": self.appid, "pagepath": self.pagepath, "content": clean_text(self.content)}


@dataclass(frozen=True)
class MenuText(MenuItem):
    content: str
    kind: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        _check(self.content, "content", 1024)

    def fields(self) -> dict[str, Any]:
        return {"content": clean_text(self.content)}


@dataclass(frozen=True)
class MsgMenu(KfMessage):
    """A menu message: ``head_content``, up to ten items, ``tail_content``."""

    items: Sequence[MenuItem] = ()
    head_content: str = ""
    tail_content: str = ""
    msgtype: ClassVar[str] = "msgmenu"

    def __post_init__(self) -> None:
        items = tuple(self.items)
        if not all(isinstance(item, MenuItem) for item in items):
            raise TypeError("items must be MenuClick, MenuView, MenuMiniProgram or MenuText")
        if len(items) > MENU_ITEMS:
            raise ValueError(f"a msgmenu holds at most {MENU_ITEMS} items, got {len(items)}")
        _check(self.head_content, "head_content", 1024, required=False)
        _check(self.tail_content, "tail_content", 1024, required=False)
        if not items and not self.head_content:
            raise ValueError("a msgmenu needs items or a head_content")
        object.__setattr__(self, "items", items)

    def payload(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.head_content:
            fields["head_content"] = clean_text(self.head_content)
        fields["list"] = [item.to_api() for item in self.items]
        if self.tail_content:
            fields["tail_content"] = clean_text(self.tail_content)
        return fields


# -- what handlers return → messages ------------------------------------------------------------
_MEDIA: dict[str, type[_Media]] = {"image": Image, "voice": Voice, "video": Video, "file": File}
_MENU_ITEMS: dict[str, type[MenuItem]] = {
    "click": MenuClick,
    "view": MenuView,
    "miniprogram": MenuMiniProgram,
    "text": MenuText,
}


def _pick(fields: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: fields[name] for name in names if fields.get(name) not in (None, "")}


def from_api(value: Mapping[str, Any]) -> KfMessage:
    """A message from the kf/send_msg shape, ``{"msgtype": "link", "link": {...}}`` (the payload
    may also sit at the top level). Raises ValueError for an unknown type or missing field."""
    msgtype = value.get("msgtype")
    nested = value.get(msgtype) if isinstance(msgtype, str) else None
    fields = nested if isinstance(nested, Mapping) else value
    try:
        if msgtype == "text":
            return Text(fields["content"])
        if msgtype in _MEDIA:
            return _MEDIA[msgtype](fields["media_id"])
        if msgtype == "link":
            return Link(**_pick(fields, ("title", "url", "thumb_media_id", "desc")))
        if msgtype == "miniprogram":
            names = ("appid", "title", "thumb_media_id", "pagepath")
            return MiniProgram(**_pick(fields, names))
        if msgtype == "location":
            return Location(**_pick(fields, ("latitude", "longitude", "name", "address")))
        if msgtype == "msgmenu":
            return MsgMenu(
                tuple(_menu_item(item) for item in fields.get("list") or ()),
                head_content=fields.get("head_content") or "",
                tail_content=fields.get("tail_content") or "",
            )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a {msgtype} message is missing or has a bad field: {exc}") from None
    raise ValueError(f"unsupported kf message type {msgtype!r}")


def _menu_item(item: Any) -> MenuItem:
    if not isinstance(item, Mapping) or item.get("type") not in _MENU_ITEMS:
        raise ValueError(f"a msgmenu item needs a type of {sorted(_MENU_ITEMS)}")
    kind = item["type"]
    fields = item.get(kind) if isinstance(item.get(kind), Mapping) else item
    cls = _MENU_ITEMS[kind]
    return cls(**_pick(fields, [f.name for f in dataclasses.fields(cls)]))  # type: ignore[arg-type]


def to_kf_messages(value: object) -> list[KfMessage]:
    """Turn what a handler returned into the messages to send ([] means no answer).

    Accepted: ``None`` or ``""``; a ``str`` (text); a :class:`KfMessage`; a dict in the
    kf/send_msg shape (``{"msgtype": "image", "image": {"media_id": ...}}``); an app reply
    (:class:`app.wecom.Reply` or its XML-style dict) whose type kf also has; or a list of these.
    """
    if value is None or value == "":
        return []
    if isinstance(value, KfMessage):
        return [value]
    if isinstance(value, str):
        return [Text(value)]
    if isinstance(value, Reply):
        return [_from_app_reply(value)]
    if isinstance(value, Mapping):
        if "msgtype" in value:
            return [from_api(value)]
        reply = to_reply(value)
        return [_from_app_reply(reply)] if reply is not None else []
    if isinstance(value, list | tuple):
        messages: list[KfMessage] = []
        for item in value:
            if isinstance(item, list | tuple):
                raise TypeError("a handler may return a list of messages, not a list of lists")
            messages.extend(to_kf_messages(item))
        return messages
    raise TypeError(
        f"cannot make a kf message from {type(value).__name__}: "
        "return None, str, a kf message object, a dict or a list of them"
    )


def _from_app_reply(reply: Reply) -> KfMessage:
    api = reply.to_api_message()
    if api is None or api.get("msgtype") not in ("text", *_MEDIA):
        raise ValueError(f"a {type(reply).__name__} has no 微信客服 equivalent")
    return from_api(api)


__all__ = [
    "TEXT_LIMIT",
    "File",
    "Image",
    "KfMessage",
    "Link",
    "Location",
    "MenuClick",
    "MenuItem",
    "MenuMiniProgram",
    "MenuText",
    "MenuView",
    "MiniProgram",
    "MsgMenu",
    "Text",
    "Video",
    "Voice",
    "clean_text",
    "from_api",
    "to_kf_messages",
]
