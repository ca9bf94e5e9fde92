"""The kf router: who reaches which handler, and how handler modules are loaded."""

from __future__ import annotations

import re
import types

import pytest

from app.kf import NEXT, KfRouter
from app.routing.loading import HandlerModuleError, load_router


def customer(content: str = "", **fields) -> dict:
    message = {"msgid": "m1", "origin": 3, "external_userid": "wm1", "msgtype": "text"}
    message["text"] = {"content": content}
    message.update(fields)
    return message


def event(event_type: str, origin: int = 4, **fields) -> dict:
    return {
        "msgid": "e1",
        "origin": origin,
        "msgtype": "event",
        "event": {"event_type": event_type, **fields},
    }


@pytest.fixture
def router() -> KfRouter:
    router = KfRouter()

    @router.text("你好")
    def hello(message):
        return "hello"

    @router.regex(r"^订单\s*(\d+)$")
    def order(message, match):
        return f"order {match.group(1)}"

    @router.menu_click(re.compile(r"^rate_(\d)$"))
    def rated(message, match):
        return f"rated {match.group(1)}"

    @router.msgtype("image", "voice")
    def media(message):
        return message["msgtype"]

    @router.event("enter_session")
    def entered(message):
        return "welcome"

    @router.text("pass")
    def passes(message):
        return NEXT

    @router.default
    def other(message):
        return f"default {message['msgtype']}"

    return router


def test_messages_by_text_pattern_menu_and_type(router):
    assert router.dispatch(customer("你好")) == "hello"
    assert router.dispatch(customer("订单 42")) == "order 42"
    click = customer("五星", text={"content": "五星", "menu_id": "rate_5"})
    assert router.dispatch(click) == "rated 5"
    assert router.dispatch(customer(msgtype="image", image={"media_id": "M"})) == "image"
    assert router.dispatch(customer("pass")) == "default text"


def test_events_reach_event_rules_and_the_default(router):
    assert router.dispatch(event("enter_session")) == "welcome"
    assert router.dispatch(event("user_recall_msg")) == "default event"


def test_only_customers_and_events_are_dispatched(router):
    servicer = customer("你好", origin=5, servicer_userid="zhangsan")
    assert router.dispatch(servicer) is None
    assert router.dispatch(customer("你好", origin=None)) is None
    # An "event" that claims origin 3 is not an event, and a message claiming 4 is not a message.
    assert router.dispatch(event("enter_session", origin=3)) == "default event"
    assert router.dispatch(customer("你好", origin=4)) == "default text"


def test_on_rules_see_both_and_scope_narrows():
    router = KfRouter()
    seen = []
    router.on(lambda message: seen.append(message["msgid"]) or False)(lambda m: "never")
    router.on(lambda message: True, "event")(lambda m: "event only")
    assert router.dispatch(customer("x")) is None
    assert router.dispatch(event("session_status_change")) == "event only"
    assert seen == ["m1", "e1"]


def test_loader_adds_the_welcome_after_the_module_rules(monkeypatch):
    module = types.ModuleType("kf_handlers_for_test")
    module.router = KfRouter()

    @module.router.event("enter_session")
    def mine(message):
        return "mine" if message["event"].get("scene") == "vip" else NEXT

    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    router = load_router(module.__name__, KfRouter).with_welcome("欢迎")
    assert router.dispatch(event("enter_session", welcome_code="C", scene="vip")) == "mine"
    assert router.dispatch(event("enter_session", welcome_code="C")) == "欢迎"
    assert router.dispatch(event("enter_session")) is None  # no code: no welcome
    assert len(module.router.rules) == 1  # the module's router itself is left alone


def test_loader_with_register_and_errors(monkeypatch):
    module = types.ModuleType("kf_register_for_test")
    module.register = lambda router: router.text()(lambda message: "registered")
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    assert load_router(module.__name__, KfRouter).dispatch(customer("x")) == "registered"
    empty = types.ModuleType("kf_empty_for_test")
    monkeypatch.setitem(__import__("sys").modules, empty.__name__, empty)
    with pytest.raises(HandlerModuleError, match="neither"):
        load_router(empty.__name__, KfRouter)


def test_demo():
    demo = load_router("app.handlers.kf_demo", KfRouter)
    assert demo.dispatch(customer("你好")) == "你好,这是测试机器人"
    assert demo.dispatch(customer("随便")) == "随便"
    assert demo.dispatch(customer(msgtype="image", image={"media_id": "M"})) == "收到图片"
    assert demo.dispatch(event("enter_session", welcome_code="C")) is None
    welcoming = demo.with_welcome("欢迎光临")
    assert welcoming.dispatch(event("enter_session", welcome_code="C")) == "欢迎光临"
    assert welcoming.dispatch(event("msg_send_fail", fail_type=6)) is None
