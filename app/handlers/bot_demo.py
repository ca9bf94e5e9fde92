"""The demo intelligent bot: "你好" streams "你好,这是测试机器人", other text streams back its
echo, both a few characters at a time so the simulator shows the stream grow. "卡片" answers with
a button card; a click replaces it. Other messages are acknowledged; the welcome greets."""

from __future__ import annotations

import time
from collections.abc import Iterator

from app.handlers.demo import GREETING, RECEIVED
from app.routing.bot_router import BotRouter
from app.wecom.aibot import TemplateCardReply, UpdateCardReply, event_details, text_of

router = BotRouter()

WELCOME = "你好，我是测试机器人。发一句话给我，我会一点一点地复述。"
#: Characters per piece and the pause between pieces.
PIECE_CHARS = 2
PIECE_SECONDS = 0.25
#: A long echo comes in at most this many pieces, so it never takes long.
MAX_PIECES = 12
CARD_TASK = "demo_card"


def trickle(text: str) -> Iterator[str]:
    size = max(PIECE_CHARS, -(-len(text) // MAX_PIECES))
    for start in range(0, len(text), size):
        if start:
            time.sleep(PIECE_SECONDS)
        yield text[start : start + size]


def demo_card(title: str, description: str, buttons: bool = True) -> dict:
    card: dict = {
        "card_type": "button_interaction" if buttons else "text_notice",
        "main_title": {"title": title, "desc": description},
        "task_id": CARD_TASK,
    }
    if buttons:
        card["button_list"] = [
            {"text": "好", "style": 1, "key": "DEMO_YES"},
            {"text": "不好", "style": 2, "key": "DEMO_NO"},
        ]
    else:
        card["card_action"] = {"type": 1, "url": "https://work.weixin.qq.com/"}
    return card


@router.text("你好")
def hello(message: dict) -> Iterator[str]:
    return trickle(GREETING)


@router.text("卡片")
def card(message: dict) -> TemplateCardReply:
    return TemplateCardReply(demo_card("测试卡片", "点一个按钮"))


@router.text()
def echo(message: dict) -> Iterator[str]:
    return trickle(text_of(message))


@router.event("enter_chat")
def welcome(message: dict) -> str:
    return WELCOME


@router.card()
def clicked(message: dict) -> UpdateCardReply:
    details = event_details(message)
    key = str(details.get("event_key") or "")
    card = demo_card("已收到", f"你点击了：{key}", buttons=False)
    card["task_id"] = str(details.get("task_id") or CARD_TASK)
    return UpdateCardReply(card)


@router.default
def other(message: dict) -> str | None:
    if message.get("msgtype") == "event":
        return None  # feedback and other events: acknowledged, no reply allowed
    if message.get("msgtype") == "voice":
        return f"收到语音：{text_of(message)}"
    return RECEIVED.get(message.get("msgtype", ""), "收到消息")
