"""Route intelligent-bot callbacks to the user's handlers, in the style of :class:`Router`.

A handler takes the message dict (WeCom's own field names: ``msgtype``, ``text.content``,
``from.userid``, ``event.eventtype`` …) and returns what the callback can carry:

* a user message (``text``, ``image``, ``mixed``, ``voice``, ``file``, ``video``): a string (one
  finished stream), a generator or iterator of text chunks (a stream that grows while it runs),
  :class:`StreamReply`, :class:`StreamWithCardReply`, :class:`TemplateCardReply`, or None;
* ``enter_chat``: a string or :class:`WelcomeText` (the welcome), :class:`TemplateCardReply`,
  or None;
* ``template_card_event``: :class:`UpdateCardReply` (replaces the card), a string or
  :class:`Markdown` or :class:`TemplateCardReply` (sent through ``response_url``), or None;
* ``feedback_event`` and other events: None only.

Anything else raises :class:`BotReplyTypeError` naming the handler, what it returned and what
the callback allows. Stream refresh callbacks never reach a handler::

    router = BotRouter()

    @router.text("你好")
    def hello(message):
        return "你好"

    @router.text()
    def echo(message):
        def chunks():
            yield "你说："
            yield text_of(message)
        return chunks()

    @router.card("BUTTON_OK")
    def clicked(message):
        return UpdateCardReply({...})
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.routing.app_router import NEXT, run_first_match, text_matches
from app.wecom.aibot import (
    Markdown,
    StreamReply,
    StreamWithCardReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
    callback_kind,
    event_details,
    event_type,
    text_of,
)

Message = dict[str, Any]
Handler = Callable[..., Any]
Matcher = Callable[[Message], Any]

#: What each kind of callback may return (after strings and iterators are wrapped).
ALLOWED: dict[str, tuple[type, ...]] = {
    "message": (StreamReply, StreamWithCardReply, TemplateCardReply),
    "enter_chat": (WelcomeText, TemplateCardReply),
    "template_card_event": (UpdateCardReply, Markdown, TemplateCardReply),
}
WELCOME_RULE = "WECOM_BOT_WELCOME"


class BotReplyTypeError(TypeError):
    """A handler returned a reply its callback cannot carry."""


@dataclass(frozen=True)
class BotRule:
    matcher: Matcher
    handler: Handler
    description: str


def _is_chunks(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | Mapping)


def check_reply(kind: str, value: Any, handler: str = "handler") -> Any:
    """``value`` made a reply object for a callback of ``kind`` (see :func:`callback_kind`), or
    None; raises BotReplyTypeError when the callback cannot carry it."""
    if value is None or value is NEXT:
        return None
    if kind == "message" and (isinstance(value, str) or _is_chunks(value)):
        return StreamReply(value)
    if kind == "enter_chat" and isinstance(value, str):
        return WelcomeText(value)
    if kind == "template_card_event" and isinstance(value, str):
        return Markdown(value)
    allowed = ALLOWED.get(kind, ())
    if isinstance(value, allowed):
        return value
    what = "nothing (return None)"
    if allowed:
        what = ", ".join(["a string", *(cls.__name__ for cls in allowed)])
        if kind == "message":
            what += ", a generator of text chunks"
    raise BotReplyTypeError(
        f"{handler} returned {type(value).__name__} for a {kind} callback, which accepts {what}"
    )


class BotRouter:
    """An ordered list of rules plus a default handler."""

    def __init__(self) -> None:
        self.rules: list[BotRule] = []
        self.default_handler: Handler | None = None

    # -- registration -------------------------------------------------------------------------
    def add(self, matcher: Matcher, handler: Handler, description: str = "") -> None:
        self.rules.append(
            BotRule(matcher, handler, description or getattr(handler, "__name__", ""))
        )

    def on(self, matcher: Matcher) -> Callable[[Handler], Handler]:
        """Register a handler for callbacks the predicate accepts."""

        def register(handler: Handler) -> Handler:
            self.add(matcher, handler)
            return handler

        return register

    def msgtype(self, *msg_types: str) -> Callable[[Handler], Handler]:
        """User messages of these msgtypes: ``text``, ``image``, ``mixed``, ``voice``, ``file``,
        ``video`` (events have their own rules)."""
        wanted = set(msg_types)
        return self.on(lambda message: message.get("msgtype") in wanted)

    def text(self, *contents: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """Text messages; with arguments, only those whose text (an ``@bot`` mention removed in
        groups) equals one of them, or matches a compiled pattern (the match is passed on)."""

        def matcher(message: Message) -> Any:
            if message.get("msgtype") != "text":
                return False
            if not contents:
                return True
            content = text_of(message)
            for pattern in contents:
                found = text_matches(pattern, content)
                if found:
                    return found
            return False

        return self.on(matcher)

    def regex(self, pattern: str | re.Pattern[str], flags: int = 0) -> Callable[[Handler], Handler]:
        """Text messages matching ``pattern``; the handler gets (message, match)."""
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        return self.text(compiled)

    def event(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Events by ``event.eventtype``: ``enter_chat``, ``template_card_event``,
        ``feedback_event`` … (any event when none is given)."""
        wanted = set(event_types)
        return self.on(
            lambda message: (
                message.get("msgtype") == "event" and (not wanted or event_type(message) in wanted)
            )
        )

    def card(self, *keys: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """A click on a template card: ``template_card_event`` whose ``event_key`` is one of
        ``keys`` (any when none is given; a compiled pattern's match is passed on)."""

        def matcher(message: Message) -> Any:
            if event_type(message) != "template_card_event":
                return False
            if not keys:
                return True
            key = str(event_details(message).get("event_key") or "")
            for pattern in keys:
                found = text_matches(pattern, key)
                if found:
                    return found
            return False

        return self.on(matcher)

    def default(self, handler: Handler) -> Handler:
        """The handler for callbacks no rule matched."""
        self.default_handler = handler
        return handler

    def copy(self) -> BotRouter:
        twin = BotRouter()
        twin.rules = list(self.rules)
        twin.default_handler = self.default_handler
        return twin

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, message: Message) -> Any:
        """Run the first matching handler; return its answer checked and wrapped for this kind
        of callback (:func:`check_reply`), or None."""
        kind = callback_kind(message)
        if kind == "refresh":
            raise ValueError("stream refresh callbacks are answered by the stream, not a handler")
        chosen: list[str] = []

        def named(rule_handler: Handler) -> Handler:
            def call(*args: Any) -> Any:
                chosen.append(getattr(rule_handler, "__qualname__", repr(rule_handler)))
                return rule_handler(*args)

            return call

        rules = [
            BotRule(rule.matcher, named(rule.handler), rule.description) for rule in self.rules
        ]
        default = named(self.default_handler) if self.default_handler else None
        value = run_first_match(rules, default, message)
        return check_reply(kind, value, chosen[-1] if chosen else "handler")


def add_welcome(router: BotRouter, welcome: str) -> None:
    """Answer ``enter_chat`` with ``welcome`` (WECOM_BOT_WELCOME), before the module's rules."""
    if welcome:
        rule = BotRule(
            lambda message: event_type(message) == "enter_chat",
            lambda message: WelcomeText(welcome),
            WELCOME_RULE,
        )
        router.rules.insert(0, rule)


def load_bot_router(module_name: str, welcome: str = "") -> BotRouter:
    """The router of a bot handler module (``router = BotRouter()`` or ``register(router)``);
    a copy, so the welcome rule never leaks into the module's own router."""
    module = importlib.import_module(module_name)
    register = getattr(module, "register", None)
    if callable(register):
        router = BotRouter()
        register(router)
    else:
        shared = getattr(module, "router", None)
        if not isinstance(shared, BotRouter):
            raise TypeError(
                f"bot handler module {module_name!r} defines neither `router = BotRouter()` "
                "nor `register(router)`"
            )
        router = shared.copy()
    add_welcome(router, welcome)
    return router


__all__ = ["BotReplyTypeError", "BotRouter", "add_welcome", "check_reply", "load_bot_router"]
