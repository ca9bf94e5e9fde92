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

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.routing.rules import (
    NEXT,
    Handler,
    Message,
    Pattern,
    Rule,
    RuleRouter,
    first_text_match,
    run_first_match,
)
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

#: What each kind of callback may return (after strings and iterators are wrapped).
ALLOWED: dict[str, tuple[type, ...]] = {
    "message": (StreamReply, StreamWithCardReply, TemplateCardReply),
    "enter_chat": (WelcomeText, TemplateCardReply),
    "template_card_event": (UpdateCardReply, Markdown, TemplateCardReply),
}
WELCOME_RULE = "WECOM_BOT_WELCOME"


class BotReplyTypeError(TypeError):
    """A handler returned a reply its callback cannot carry."""


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


class BotRouter(RuleRouter):
    """Rules over bot callbacks: ``msgtype``, the text (an ``@bot`` mention removed in groups),
    ``event.eventtype`` and a card's ``event_key``."""

    def message_type(self, message: Message) -> str:
        return str(message.get("msgtype") or "")

    def text_of(self, message: Message) -> str:
        return text_of(message)

    def event(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Events by ``event.eventtype``: ``enter_chat``, ``template_card_event``,
        ``feedback_event`` … (any event when none is given)."""
        wanted = set(event_types)
        return self.on(
            lambda message: (
                message.get("msgtype") == "event" and (not wanted or event_type(message) in wanted)
            )
        )

    def card(self, *keys: Pattern) -> Callable[[Handler], Handler]:
        """A click on a template card: ``template_card_event`` whose ``event_key`` is one of
        ``keys`` (any when none is given; a compiled pattern's match is passed on)."""

        def matcher(message: Message) -> Any:
            if event_type(message) != "template_card_event":
                return False
            key = str(event_details(message).get("event_key") or "")
            return first_text_match(keys, key) if keys else True

        return self.on(matcher)

    def with_welcome(self, welcome: str) -> BotRouter:
        """A copy that answers ``enter_chat`` with ``welcome`` (WECOM_BOT_WELCOME) before the
        module's own rules; the module's router itself is left as it is."""
        twin = self.copy()
        assert isinstance(twin, BotRouter)
        if welcome:
            rule = Rule(
                lambda message: event_type(message) == "enter_chat",
                lambda message: WelcomeText(welcome),
                WELCOME_RULE,
            )
            twin.rules.insert(0, rule)
        return twin

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

        rules = [Rule(rule.matcher, named(rule.handler), rule.description) for rule in self.rules]
        default = named(self.default_handler) if self.default_handler else None
        value = run_first_match(rules, default, message)
        return check_reply(kind, value, chosen[-1] if chosen else "handler")


__all__ = ["BotReplyTypeError", "BotRouter", "check_reply"]
