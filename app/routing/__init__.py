"""Routing: which handler answers a message.

The public API for handler modules: ``from app.routing import NEXT, Router`` for a self-built
app's messages, ``from app.kf import KfRouter`` for 微信客服 items.
"""

from app.routing.app_router import Router
from app.routing.kf_router import KfRouter
from app.routing.rules import NEXT
from app.routing.time_limit import HandlerTimeout, dispatch_with_time_limit

__all__ = ["NEXT", "HandlerTimeout", "KfRouter", "Router", "dispatch_with_time_limit"]
