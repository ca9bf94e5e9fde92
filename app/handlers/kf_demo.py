"""The demo bot for 微信客服, used when WECOM_KF_HANDLERS is not set: answers "你好", echoes other
text and acknowledges other messages, like the app demo. The welcome on ``enter_session``
(WECOM_KF_WELCOME) is added by the loader."""

from __future__ import annotations

from app.handlers.demo import GREETING, RECEIVED
from app.routing.kf_router import KfRouter

router = KfRouter()


@router.text("你好")
def hello(message: dict) -> str:
    return GREETING


@router.text()
def echo(message: dict) -> str:
    return str((message.get("text") or {}).get("content") or "")


@router.default
def other(message: dict) -> str | None:
    if message.get("msgtype") == "event":
        return None  # events are recorded, not answered (the welcome has its own rule)
    return RECEIVED.get(str(message.get("msgtype")), "收到消息")
