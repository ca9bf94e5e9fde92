"""BotRouter: rules in the style of Router, and the reply types each callback can carry."""

from __future__ import annotations

import re

import pytest

from app.routing import NEXT
from app.routing.bot_router import BotReplyTypeError, BotRouter, check_reply
from app.routing.loading import HandlerModuleError, load_router
from app.wecom.aibot import (
    Markdown,
    StreamReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
)

CARD = {
    "card_type": "text_notice",
    "main_title": {"title": "t"},
    "card_action": {"type": 1, "url": "u"},
}


def text(content: str, **extra) -> dict:
    return {"msgtype": "text", "text": {"content": content}, "msgid": "m", **extra}


def event(eventtype: str, **details) -> dict:
    return {"msgtype": "event", "event": {"eventtype": eventtype, eventtype: details}}


def test_rules_in_order_with_next_and_matches() -> None:
    router = BotRouter()
    seen = []

    @router.text("你好")
    def hello(message):
        seen.append("hello")
        return NEXT

    @router.regex(r"^(\d+)号$")
    def number(message, match: re.Match):
        return f"#{match.group(1)}"

    @router.msgtype("image")
    def image(message):
        return "图"

    @router.card("OK", re.compile(r"^K(\d)$"))
    def card(message, *match):
        return Markdown("clicked")

    @router.default
    def other(message):
        return "默认"

    assert router.dispatch(text("@机器人 你好", chattype="group", chatid="c")) == StreamReply(
        "默认"
    )
    assert seen == ["hello"]
    assert router.dispatch(text("12号")) == StreamReply("#12")
    assert router.dispatch({"msgtype": "image", "image": {"url": "u"}}) == StreamReply("图")
    assert router.dispatch(event("template_card_event", event_key="K3")) == Markdown("clicked")
    assert router.dispatch(event("template_card_event", event_key="NO")) == Markdown("默认")


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("message", "hi", StreamReply("hi")),
        ("enter_chat", "hi", WelcomeText("hi")),
        ("template_card_event", "hi", Markdown("hi")),
        ("enter_chat", TemplateCardReply(CARD), TemplateCardReply(CARD)),
        ("template_card_event", UpdateCardReply(CARD), UpdateCardReply(CARD)),
        ("feedback_event", None, None),
        ("message", NEXT, None),
    ],
)
def test_accepted_replies(kind: str, value, expected) -> None:
    assert check_reply(kind, value) == expected


def test_generators_become_streams() -> None:
    chunks = iter(["a", "b"])
    assert check_reply("message", chunks) == StreamReply(chunks)


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("message", WelcomeText("x"), "WelcomeText for a message callback"),
        ("message", UpdateCardReply(CARD), "UpdateCardReply for a message callback"),
        ("message", {"msgtype": "text"}, "dict for a message callback"),
        ("enter_chat", iter(["x"]), "for a enter_chat callback"),
        ("template_card_event", StreamReply("x"), "StreamReply for a template_card_event"),
        ("feedback_event", "thanks", "accepts nothing (return None)"),
        ("some_future_event", "x", "accepts nothing"),
    ],
)
def test_refused_replies_name_what_is_allowed(kind: str, value, words: str) -> None:
    with pytest.raises(BotReplyTypeError, match=re.escape(words)):
        check_reply(kind, value, "my_handler")


def test_the_error_names_the_handler() -> None:
    router = BotRouter()

    @router.text()
    def sloppy(message):
        return WelcomeText("x")

    with pytest.raises(BotReplyTypeError, match="sloppy returned WelcomeText"):
        router.dispatch(text("x"))
    with pytest.raises(ValueError):
        router.dispatch({"msgtype": "stream", "stream": {"id": "s"}})


def test_the_welcome_rule_goes_first_and_stays_out_of_the_module() -> None:
    router = load_router("app.handlers.bot_demo", BotRouter).with_welcome("欢迎光临")
    assert router.dispatch(event("enter_chat")) == WelcomeText("欢迎光临")
    from app.handlers import bot_demo

    assert bot_demo.router.dispatch(event("enter_chat")) == WelcomeText(bot_demo.WELCOME)
    with pytest.raises(HandlerModuleError, match="defines neither"):
        load_router("app.handlers.demo", BotRouter)
