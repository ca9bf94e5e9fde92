"""Route 微信客服 messages and events (items of kf/sync_msg) to the user's handlers.

The same feel as :mod:`app.routing`, with the kf field names (``msgtype``, ``text.content``,
``event.event_type``). A handler gets the item as kf/sync_msg returned it and returns a string,
a message from :mod:`app.wecom.kf_messages`, a dict in the kf/send_msg shape, a list of those, or
``None``; :data:`NEXT` passes the item on to the next matching rule::

    router = KfRouter()

    @router.text("你好")
    def hello(message):
        return "你好"

    @router.menu_click("satisfied")
    def thanks(message):
        return "谢谢"

    @router.event("enter_session")
    def welcome(message):
        return "欢迎"  # sent with the event's welcome_code

Who is answered: customer messages (``origin`` 3) reach message rules, system events (origin 4)
reach event rules, and both reach ``on`` rules and the default. Messages a servicer sent from the
WeCom client (origin 5), and anything else, reach no handler at all.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from app.routing.app_router import run_first_match, text_matches
from app.routing.forward import Forwarder

Message = dict[str, Any]
Handler = Callable[..., Any]
Matcher = Callable[[Message], Any]  # a falsy value, True, or a re.Match passed to the handler
Scope = Literal["message", "event", "any"]

CUSTOMER = 3  # origin of a message the WeChat customer wrote
EVENT = 4  # origin of a system event
SERVICER = 5  # origin of a message a servicer sent from the WeCom client

DEMO_HANDLERS = "app.handlers.kf_demo"

#: Forwarded kf messages carry this field, so one backend can serve apps and 微信客服.
FORWARD_SOURCE = {"source": "kf"}

WELCOME_RULE = "WECOM_KF_WELCOME"


@dataclass(frozen=True)
class KfRule:
    matcher: Matcher
    handler: Handler
    scope: Scope
    description: str


def origin_of(message: Message) -> int | None:
    try:
        return int(message.get("origin"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def event_type(message: Message) -> str:
    event = message.get("event")
    return str(event.get("event_type") or "") if isinstance(event, dict) else ""


def _text_of(message: Message) -> str:
    text = message.get("text")
    return str(text.get("content") or "") if isinstance(text, dict) else ""


class KfRouter:
    """An ordered list of rules plus a default handler."""

    def __init__(self) -> None:
        self.rules: list[KfRule] = []
        self.default_handler: Handler | None = None

    # -- registration -------------------------------------------------------------------------
    def add(
        self, matcher: Matcher, handler: Handler, scope: Scope = "any", description: str = ""
    ) -> None:
        name = description or getattr(handler, "__name__", "")
        self.rules.append(KfRule(matcher, handler, scope, name))

    def on(self, matcher: Matcher, scope: Scope = "any") -> Callable[[Handler], Handler]:
        """Customer messages and events the predicate accepts (``scope`` narrows it)."""

        def register(handler: Handler) -> Handler:
            self.add(matcher, handler, scope)
            return handler

        return register

    def msgtype(self, *msg_types: str) -> Callable[[Handler], Handler]:
        """Customer messages of these msgtypes: ``text``, ``image``, ``voice``, ``video``,
        ``file``, ``location``, ``link``, ``business_card``, ``miniprogram``, ``msgmenu``,
        ``channels_shop_product``, ``channels_shop_order``, ``merged_msg``, ``channels`` …"""
        wanted = set(msg_types)
        return self.on(lambda message: message.get("msgtype") in wanted, "message")

    def text(self, *contents: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """Customer text; with arguments, only a content equal to one of them (or matching a
        compiled pattern, whose match is then passed as the second argument)."""

        def matcher(message: Message) -> Any:
            if message.get("msgtype") != "text":
                return False
            if not contents:
                return True
            content = _text_of(message)
            for pattern in contents:
                found = text_matches(pattern, content)
                if found:
                    return found
            return False

        return self.on(matcher, "message")

    def regex(self, pattern: str | re.Pattern[str], flags: int = 0) -> Callable[[Handler], Handler]:
        """Customer text matching ``pattern``; the handler gets (message, match)."""
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        return self.text(compiled)

    def menu_click(self, *ids: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """A click on a ``msgmenu`` button: a text message carrying ``menu_id`` (one of ``ids``,
        or any when none is given)."""

        def matcher(message: Message) -> Any:
            text = message.get("text")
            if message.get("msgtype") != "text" or not isinstance(text, dict):
                return False
            menu_id = str(text.get("menu_id") or "")
            if not menu_id:
                return False
            if not ids:
                return True
            for pattern in ids:
                found = text_matches(pattern, menu_id)
                if found:
                    return found
            return False

        return self.on(matcher, "message")

    def event(self, *event_types: str) -> Callable[[Handler], Handler]:
        """System events by ``event.event_type``: ``enter_session``, ``msg_send_fail``,
        ``servicer_status_change``, ``session_status_change``, ``user_recall_msg``,
        ``servicer_recall_msg`` … (any event when none is given)."""
        wanted = set(event_types)
        return self.on(lambda message: not wanted or event_type(message) in wanted, "event")

    def default(self, handler: Handler) -> Handler:
        """The handler for customer messages and events no rule matched."""
        self.default_handler = handler
        return handler

    def copy(self) -> KfRouter:
        """A router with the same rules and default, to extend without touching this one."""
        twin = KfRouter()
        twin.rules = list(self.rules)
        twin.default_handler = self.default_handler
        return twin

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, message: Message) -> Any:
        """Run the first matching handler; None when nothing answers (or nobody may)."""
        origin = origin_of(message)
        if origin == CUSTOMER:
            scopes: tuple[Scope, ...] = ("message", "any")
        elif origin == EVENT:
            scopes = ("event", "any")
        else:
            return None
        rules = (rule for rule in self.rules if rule.scope in scopes)
        return run_first_match(rules, self.default_handler, message)


def has_welcome_code(message: Message) -> bool:
    event = message.get("event")
    return event_type(message) == "enter_session" and bool(
        isinstance(event, dict) and event.get("welcome_code")
    )


def add_welcome(router: KfRouter, welcome: str) -> None:
    """Answer ``enter_session`` events that carry a welcome_code with ``welcome``, after the
    router's own rules (a handler of its own for enter_session wins)."""
    if welcome:
        router.add(has_welcome_code, lambda message: welcome, "event", WELCOME_RULE)


def load_kf_router(module_name: str = "", welcome: str = "") -> KfRouter:
    """The kf router of a handler module (``router = KfRouter()`` or ``register(router)``);
    the demo bot when ``module_name`` is empty. ``welcome`` is WECOM_KF_WELCOME."""
    module = importlib.import_module(module_name or DEMO_HANDLERS)
    register = getattr(module, "register", None)
    if callable(register):
        router = KfRouter()
        register(router)
    else:
        shared = getattr(module, "router", None)
        if not isinstance(shared, KfRouter):
            raise TypeError(
                f"kf handler module {module_name!r} defines neither `router = KfRouter()` "
                "nor `register(router)`"
            )
        router = shared.copy()  # the welcome rule must not leak into the module's router
    add_welcome(router, welcome)
    return router


def forwarding_kf_router(forwarder: Forwarder, welcome: str = "") -> KfRouter:
    """Every customer message and event goes to the backend (WECOM_FORWARD_URL), as the kf item
    plus ``"source": "kf"``; the backend's answer is sent like a handler's. When the backend
    fails, a customer gets WECOM_FORWARD_FALLBACK as for an app, but an event gets no answer."""
    fields = {**forwarder.extra_fields, **FORWARD_SOURCE}
    messages = Forwarder(forwarder.url, forwarder.timeout, forwarder.fallback, fields)
    events = Forwarder(forwarder.url, forwarder.timeout, "", fields)
    router = KfRouter()
    add_welcome(router, welcome)
    router.on(lambda message: True, "message")(messages)
    router.on(lambda message: True, "event")(events)
    return router
