"""Routing: which handler answers a message. The public API for handler modules::

from app.routing import NEXT, Router
"""

from app.routing.app_router import NEXT, HandlerTimeout, Router, load_router
from app.routing.kf_router import KfRouter

__all__ = ["NEXT", "HandlerTimeout", "KfRouter", "Router", "load_router"]
