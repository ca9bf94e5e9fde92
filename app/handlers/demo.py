"""The guide's demo bot: answers "你好", echoes other text, acknowledges everything else.

A correctly signed message may still have an odd shape: a repeated element arrives as a list,
an element with children as a dict (see the README, "Writing handlers"). The bot reads every
field through :func:`field`, so such a message gets an acknowledgement, never a crash.
"""

from __future__ import annotations

from app.routing import Router

router = Router()

GREETING = "你好,这是测试机器人"

#: The acknowledgement for each kind of non-text message (the kf demo uses it too).
RECEIVED = {
    "image": "收到图片",
    "voice": "收到语音",
    "video": "收到视频",
    "location": "收到位置",
    "link": "收到链接",
    "file": "收到文件",
    "business_card": "收到名片",
    "miniprogram": "收到小程序",
}


def field(message: dict, name: str, parent: str | None = None) -> str:
    """A text field of the message ("" when it is missing, repeated or has children)."""
    holder = message.get(parent) if parent else message
    value = holder.get(name) if isinstance(holder, dict) else None
    return value if isinstance(value, str) else ""


@router.text("你好")
def hello(message: dict) -> str:
    return GREETING


@router.text()
def echo(message: dict) -> str:
    return field(message, "Content")


@router.event("subscribe", "enter_agent")
def welcome(message: dict) -> str:
    return GREETING


@router.event("click")
def menu_click(message: dict) -> str:
    return f"你点击了菜单：{field(message, 'EventKey')}"


@router.event("scancode_waitmsg")
def scanned(message: dict) -> str:
    return f"扫码结果：{field(message, 'ScanResult', parent='ScanCodeInfo')}"


@router.default
def other(message: dict) -> str | None:
    msg_type = field(message, "MsgType")
    if msg_type == "event":
        return None  # system events (contacts, approvals, …) are acknowledged without a reply
    return RECEIVED.get(msg_type, "收到消息")
