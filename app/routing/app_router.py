"""Route a self-built app's message (an XML callback) to the user's handler.

A handler takes the message dict (WeCom's own field names) and returns a string (a text reply), a
reply object from :mod:`app.wecom.replies`, or ``None`` (no reply). A handler may return
:data:`NEXT` to let the following rules try::

    router = Router()

    @router.text("你好")
    def hello(message):
        return "你好"

    @router.regex(r"^订单\\s*(\\d+)$")
    def order(message, match):
        return lookup(match.group(1))

    @router.event("click", key="MENU_HELP")
    def help_menu(message):
        return "..."
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.routing.rules import NEXT, Handler, Message, Pattern, RuleRouter, text_matches

__all__ = ["NEXT", "Router"]


class Router(RuleRouter):
    """Rules over app messages: ``MsgType``, ``Content``, ``Event`` and ``EventKey``."""

    def message_type(self, message: Message) -> str:
        return str(message.get("MsgType") or "")

    def text_of(self, message: Message) -> str:
        content = message.get("Content")
        return content if isinstance(content, str) else ""

    def event(self, *events: str, key: Pattern | None = None) -> Callable[[Handler], Handler]:
        """Events by ``Event`` name (compared case-insensitively: WeCom sends ``LOCATION``) and,
        optionally, by ``EventKey`` (exact, or a compiled pattern passed on as the match)."""
        wanted = {event.lower() for event in events}

        def matcher(message: Message) -> Any:
            if message.get("MsgType") != "event":
                return False
            if wanted and str(message.get("Event", "")).lower() not in wanted:
                return False
            if key is None:
                return True
            return text_matches(key, str(message.get("EventKey") or ""))

        return self.on(matcher)

    def click(self, key: Pattern) -> Callable[[Handler], Handler]:
        """A menu ``click`` event with this EventKey."""
        return self.event("click", key=key)
