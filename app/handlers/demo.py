"""The guide's demo bot: answers "你好", echoes other text, acknowledges everything else."""

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


@router.text("你好")
def hello(message: dict) -> str:
    return GREETING


@router.text()
def echo(message: dict) -> str:
    return message.get("Content") or ""


@router.event("subscribe", "enter_agent")
def welcome(message: dict) -> str:
    return GREETING


@router.event("click")
def menu_click(message: dict) -> str:
    return f"你点击了菜单：{message.get('EventKey', '')}"


@router.event("scancode_waitmsg")
def scanned(message: dict) -> str:
    return f"扫码结果：{(message.get('ScanCodeInfo') or {}).get('ScanResult', '')}"


@router.default
def other(message: dict) -> str | None:
    if message.get("MsgType") == "event":
        return None  # system events (contacts, approvals, …) are acknowledged without a reply
    return RECEIVED.get(message.get("MsgType", ""), "收到消息")
