"""How the fake speaks: the reply an API call gets, WeCom-style errors, JSON bodies and ids.

Shared by every API module of the fake; no state here.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.devtools.fakewecom import errcodes as E

if TYPE_CHECKING:
    from app.devtools.fakewecom.faults import Fault
    from app.devtools.fakewecom.tokens import App

TEXT_LIMIT = 2048  # bytes of UTF-8, text and markdown


class ControlError(ValueError):
    """A control-API request that makes no sense (answered with HTTP 400)."""


@dataclasses.dataclass
class Reply:
    """What the HTTP layer should do: answer ``body`` (JSON) or ``text``, then maybe drop."""

    status: int = 200
    body: dict[str, Any] | None = None
    text: str | None = None
    drop: bool = False


@dataclasses.dataclass(frozen=True)
class Call:
    """One authenticated API call, as the endpoint modules see it."""

    query: Mapping[str, str]
    body: dict[str, Any]
    app: App | None = None  # whose access_token it carries (None for gettoken)
    fault: Fault | None = None  # the fault being applied, if any


def error(code: int) -> Reply:
    """A WeCom error answer: HTTP 200 with ``errcode`` and a WeCom-shaped ``errmsg``."""
    return Reply(body={"errcode": code, "errmsg": E.errmsg(code, secrets.token_hex(8))})


def ok(**fields: Any) -> Reply:
    return Reply(body={"errcode": E.OK, "errmsg": "ok", **fields})


def new_id(prefix: str = "") -> str:
    """An opaque id (msgid, code) of the URL-safe letters WeCom uses."""
    return prefix + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")


def has_non_ascii_escape(text: str) -> bool:
    """True if JSON ``text`` holds a ``\\uXXXX`` escape of a non-ASCII code point."""
    i, n = 0, len(text)
    while i < n:
        j = text.find("\\", i)
        if j < 0 or j + 1 >= n:
            return False
        if text[j + 1] == "u":
            try:
                if int(text[j + 2 : j + 6], 16) >= 0x80:
                    return True
            except ValueError:
                pass
            i = j + 6
        else:
            i = j + 2  # an escaped character, possibly an escaped backslash
    return False


def parse_json_body(raw: bytes) -> tuple[dict[str, Any], Reply | None]:
    """The JSON object of a POST body, or the error WeCom answers for it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}, error(E.INVALID_CHARSET)
    if has_non_ascii_escape(text):
        return {}, error(E.INVALID_CHARSET)
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return {}, error(E.BAD_JSON)
    if not isinstance(data, dict):
        return {}, error(E.BAD_JSON)
    return data, None


def check_text(payload: Any) -> int:
    """The errcode for a text payload ({"content": …}, at most TEXT_LIMIT bytes), or 0."""
    if not isinstance(payload, Mapping) or not payload.get("content"):
        return E.EMPTY_TEXT_CONTENT
    if len(str(payload["content"]).encode("utf-8")) > TEXT_LIMIT:
        return E.CONTENT_TOO_LARGE
    return 0
