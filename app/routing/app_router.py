"""Route a parsed message to the user's handler.

A handler takes the message dict (WeCom's own field names) and returns a string (a text reply), a
reply object from :mod:`app.wecom.replies`, or ``None`` (no reply). Rules are tried in the order
they were registered; the default handler runs when none matches. A handler may return
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

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]
Handler = Callable[..., Any]
Matcher = Callable[[Message], "Any"]  # returns a falsy value, True, or a re.Match

#: Returned by a handler to pass the message on to the next matching rule.
NEXT = object()


@dataclass(frozen=True)
class Rule:
    matcher: Matcher
    handler: Handler
    description: str


def text_matches(pattern: str | re.Pattern[str], value: str) -> Any:
    """Exact comparison for a string; for a compiled pattern, its search match (or None)."""
    if isinstance(pattern, re.Pattern):
        return pattern.search(value)
    return value == pattern


def run_first_match(rules: Iterable[Any], default_handler: Handler | None, message: Message) -> Any:
    """Run the handler of the first rule (anything with ``matcher`` and ``handler``) that matches
    and does not return NEXT, else the default. A regex match is passed as a second argument."""
    for rule in rules:
        found = rule.matcher(message)
        if not found:
            continue
        if isinstance(found, re.Match):
            result = rule.handler(message, found)
        else:
            result = rule.handler(message)
        if result is not NEXT:
            return result
    if default_handler is not None:
        result = default_handler(message)
        return None if result is NEXT else result
    return None


class Router:
    """An ordered list of rules plus a default handler."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.default_handler: Handler | None = None

    # -- registration -------------------------------------------------------------------------
    def add(self, matcher: Matcher, handler: Handler, description: str = "") -> None:
        self.rules.append(Rule(matcher, handler, description or getattr(handler, "__name__", "")))

    def on(self, matcher: Matcher) -> Callable[[Handler], Handler]:
        """Register a handler for messages the given predicate accepts."""

        def register(handler: Handler) -> Handler:
            self.add(matcher, handler)
            return handler

        return register

    def msgtype(self, *msg_types: str) -> Callable[[Handler], Handler]:
        """Messages of the given MsgType(s): ``text``, ``image``, ``voice``, ``video``, …"""
        wanted = set(msg_types)
        return self.on(lambda message: message.get("MsgType") in wanted)

    def text(self, *contents: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """Text messages; with arguments, only those whose Content equals one of them (or, for a
        compiled pattern, matches it: the match is then passed as the second argument)."""

        def matcher(message: Message) -> Any:
            if message.get("MsgType") != "text":
                return False
            if not contents:
                return True
            content = message.get("Content") or ""
            for pattern in contents:
                found = text_matches(pattern, content)
                if found:
                    return found
            return False

        return self.on(matcher)

    def regex(self, pattern: str | re.Pattern[str], flags: int = 0) -> Callable[[Handler], Handler]:
        """Text messages whose Content matches ``pattern``; the handler gets (message, match)."""
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        return self.text(compiled)

    def event(
        self, *events: str, key: str | re.Pattern[str] | None = None
    ) -> Callable[[Handler], Handler]:
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

    def click(self, key: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """A menu ``click`` event with this EventKey."""
        return self.event("click", key=key)

    def default(self, handler: Handler) -> Handler:
        """The handler for messages no rule matched."""
        self.default_handler = handler
        return handler

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, message: Message) -> Any:
        """Run the first matching handler and return what it returned (``None`` for no reply)."""
        return run_first_match(self.rules, self.default_handler, message)


class HandlerTimeout(Exception):
    """A handler ran past WECOM_HANDLER_TIMEOUT; its job is recorded as failed."""


def dispatch_with_time_limit(
    dispatch: Callable[[Message], Any], message: Message, seconds: float
) -> Any:
    """``dispatch(message)``, interrupted after ``seconds`` at its next wait on I/O when gevent
    runs the process (a hung business API must not hold a job forever). Under a plain threaded
    server (``flask run``) a thread cannot be interrupted, so no limit applies there."""
    if seconds <= 0 or not _gevent_patched():
        return dispatch(message)
    import gevent

    with gevent.Timeout(seconds, HandlerTimeout(f"handler still running after {seconds:g} s")):
        return dispatch(message)


def _gevent_patched() -> bool:
    import sys

    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def load_router(module_name: str) -> Router:
    """Import the user's handler module and return its router.

    The module either defines ``router = Router()`` with handlers registered on it, or a function
    ``register(router)`` that registers them on the router it is given.
    """
    module = importlib.import_module(module_name)
    register = getattr(module, "register", None)
    if callable(register):
        router = Router()
        register(router)
        return router
    router = getattr(module, "router", None)
    if isinstance(router, Router):
        return router
    raise TypeError(
        f"handler module {module_name!r} defines neither `router = Router()` nor `register(router)`"
    )
