"""微信客服 (WeChat Customer Service): pull with kf/sync_msg, route, answer with kf/send_msg.

Handler modules import what they need from here::

    from app.kf import KfRouter, NEXT, Text, MsgMenu, MenuClick

The modules: ``routing`` (the router), ``messages`` (what handlers return), ``answers`` (the
"kf" job kind of the outbox), ``puller`` (callbacks → sync_msg → jobs), ``lanes`` (per-customer
order), ``demo`` (the default handlers), ``simulate`` (``flask simulate kf``).
"""

from app.routing import NEXT
from app.routing.kf_router import KfRouter
from app.wecom.kf_messages import (
    File,
    Image,
    KfMessage,
    Link,
    Location,
    MenuClick,
    MenuMiniProgram,
    MenuText,
    MenuView,
    MiniProgram,
    MsgMenu,
    Text,
    Video,
    Voice,
)

__all__ = [
    "NEXT",
    "File",
    "Image",
    "KfMessage",
    "KfRouter",
    "Link",
    "Location",
    "MenuClick",
    "MenuMiniProgram",
    "MenuText",
    "MenuView",
    "MiniProgram",
    "MsgMenu",
    "Text",
    "Video",
    "Voice",
]
