"""Bot handlers for the tests: streams that wait on events the test sets, long answers, images,
cards, wrong reply types, failures."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterator

from app.routing.bot_router import BotRouter
from app.wecom.aibot import (
    StreamImage,
    StreamReply,
    StreamWithCardReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
    event_details,
)

router = BotRouter()
GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
CALLS: list[str] = []
LONG = "长" * 8000  # 24 000 bytes: more than a stream frame holds
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "t"},
    "task_id": "T1",
    "button_list": [{"text": "ok", "key": "OK"}],
}
FEEDBACK_ANSWERS: list[object] = []


@router.regex(r"^gate (\w+)$")
def gated(message: dict, match: re.Match) -> Iterator[str]:
    name = match.group(1)
    CALLS.append(name)

    def chunks() -> Iterator[str]:
        yield "first"
        GATES[name].wait(10)
        yield " second"

    return chunks()


@router.regex(r"^late (\w+)$")
def late(message: dict, match: re.Match) -> str:
    GATES[match.group(1)].wait(10)
    return "late text"


@router.text("long")
def long(message: dict) -> Iterator[str]:
    return iter([LONG[:3000], LONG[3000:]])


@router.text("image")
def image(message: dict) -> Iterator[object]:
    def chunks() -> Iterator[object]:
        yield "pic"
        GATES["image"].wait(10)
        yield StreamImage(PNG)

    return chunks()


@router.text("cardstream")
def card_stream(message: dict) -> StreamWithCardReply:
    def chunks() -> Iterator[str]:
        yield "with card"
        GATES["cardstream"].wait(10)

    return StreamWithCardReply(CARD, content=chunks())


@router.text("card")
def card(message: dict) -> TemplateCardReply:
    return TemplateCardReply(CARD)


@router.text("feedback")
def feedback(message: dict) -> StreamReply:
    return StreamReply("rated", feedback_id="FB1")


@router.text("nothing")
def nothing(message: dict) -> None:
    return None


@router.text("wrong")
def wrong(message: dict) -> WelcomeText:
    return WelcomeText("only for enter_chat")


@router.text("boom")
def boom(message: dict) -> str:
    raise RuntimeError("handler bug")


@router.text("badchunk")
def bad_chunk(message: dict) -> Iterator[object]:
    return iter(["ok so far", 42])


@router.card("UPD")
def update(message: dict) -> UpdateCardReply:
    return UpdateCardReply({**CARD, "task_id": event_details(message).get("task_id", "T1")})


@router.card("MD")
def markdown(message: dict) -> str:
    return "**clicked**"


@router.event("feedback_event")
def rated(message: dict) -> object:
    return FEEDBACK_ANSWERS.pop() if FEEDBACK_ANSWERS else None


@router.default
def other(message: dict) -> str | None:
    return None if message.get("msgtype") == "event" else "default"
