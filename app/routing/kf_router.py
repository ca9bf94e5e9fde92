"""Route 微信客服 messages and events (items of kf/sync_msg) to the user's handlers.

The same feel as :class:`app.routing.Router`, with the kf field names (``msgtype``,
``text.content``, ``event.event_type``). A handler gets the item as kf/sync_msg returned it and
returns a string, a message from :mod:`app.wecom.kf_messages`, a dict in the kf/send_msg shape, a
list of those, or ``None``; :data:`NEXT` passes the item on to the next matching rule::

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

from collections.abc import Callable, Iterable
from typing import Any

from app.routing.rules import (
    Handler,
    Message,
    Pattern,
    Rule,
    RuleRouter,
    Scope,
    first_text_match,
)
from app.wecom.kf_items import CUSTOMER, EVENT, event_type, has_welcome_code, origin_of, text_of

#: The description of the rule that answers enter_session with WECOM_KF_WELCOME.
WELCOME_RULE = "WECOM_KF_WELCOME"

_SCOPES: dict[int | None, tuple[Scope, ...]] = {
    CUSTOMER: ("message", "any"),
    EVENT: ("event", "any"),
}


class KfRouter(RuleRouter):
    """Rules over 微信客服 items; message rules see customer messages, event rules events."""

    message_scope: Scope = "message"

    def message_type(self, message: Message) -> str:
        return str(message.get("msgtype") or "")

    def text_of(self, message: Message) -> str:
        return text_of(message)

    def rules_for(self, message: Message) -> Iterable[Rule] | None:
        scopes = _SCOPES.get(origin_of(message))
        if scopes is None:
            return None
        return (rule for rule in self.rules if rule.scope in scopes)

    def msgtype(self, *msg_types: str) -> Callable[[Handler], Handler]:
        """Customer messages of these msgtypes: ``text``, ``image``, ``voice``, ``video``,
        ``file``, ``location``, ``link``, ``business_card``, ``miniprogram``, ``msgmenu``,
        ``channels_shop_product``, ``channels_shop_order``, ``merged_msg``, ``channels`` …"""
        return super().msgtype(*msg_types)

    def menu_click(self, *ids: Pattern) -> Callable[[Handler], Handler]:
        """A click on a ``msgmenu`` button: a text message carrying ``menu_id`` (one of ``ids``,
        or any when none is given)."""

        def matcher(message: Message) -> Any:
            text = message.get("text")
            if message.get("msgtype") != "text" or not isinstance(text, dict):
                return False
            menu_id = str(text.get("menu_id") or "")
            if not menu_id:
                return False
            return first_text_match(ids, menu_id) if ids else True

        return self.on(matcher, "message")

    def event(self, *event_types: str) -> Callable[[Handler], Handler]:
        """System events by ``event.event_type``: ``enter_session``, ``msg_send_fail``,
        ``servicer_status_change``, ``session_status_change``, ``user_recall_msg``,
        ``servicer_recall_msg`` … (any event when none is given)."""
        wanted = set(event_types)
        return self.on(lambda message: not wanted or event_type(message) in wanted, "event")

    def with_welcome(self, welcome: str) -> KfRouter:
        """A copy that answers ``enter_session`` events carrying a welcome_code with
        ``welcome``, after this router's own rules (a handler of its own for enter_session
        wins). The module's router itself is left as it is."""
        twin = self.copy()
        assert isinstance(twin, KfRouter)
        if welcome:
            twin.add(has_welcome_code, lambda message: welcome, WELCOME_RULE, "event")
        return twin
