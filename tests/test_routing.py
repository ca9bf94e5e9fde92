import re

import pytest

from app.routing import NEXT, Router
from app.routing.loading import HandlerModuleError, load_router


def text(content: str) -> dict:
    return {"MsgType": "text", "Content": content, "FromUserName": "u"}


def event(name: str, key: str = "") -> dict:
    return {"MsgType": "event", "Event": name, "EventKey": key}


def test_exact_text_before_catch_all_in_registration_order():
    router = Router()
    router.text("你好")(lambda m: "hello")
    router.text()(lambda m: "echo " + m["Content"])
    assert router.dispatch(text("你好")) == "hello"
    assert router.dispatch(text("other")) == "echo other"


def test_regex_passes_the_match():
    router = Router()

    @router.regex(r"^订单\s*(\d+)$")
    def order(message, match):
        return f"order {match.group(1)}"

    assert router.dispatch(text("订单 42")) == "order 42"
    assert router.dispatch(text("订单")) is None


def test_text_accepts_compiled_pattern_and_several_contents():
    router = Router()
    router.text("a", "b")(lambda m: "ab")
    router.text(re.compile(r"^x(\d)"))(lambda m, match: match.group(1))
    assert router.dispatch(text("b")) == "ab"
    assert router.dispatch(text("x7y")) == "7"
    assert router.dispatch(text("c")) is None


def test_event_by_name_case_insensitive_and_by_key():
    router = Router()
    router.click("HELP")(lambda m: "help")
    router.event("click", key=re.compile(r"^ORDER_(\d+)$"))(lambda m, match: match.group(1))
    router.event("location")(lambda m: "loc")
    assert router.dispatch(event("click", "HELP")) == "help"
    assert router.dispatch(event("click", "ORDER_9")) == "9"
    assert router.dispatch(event("LOCATION")) == "loc"
    assert router.dispatch(event("click", "OTHER")) is None


def test_msgtype_and_default():
    router = Router()
    router.msgtype("image", "voice")(lambda m: "media")
    router.default(lambda m: "default")
    assert router.dispatch({"MsgType": "voice"}) == "media"
    assert router.dispatch({"MsgType": "video"}) == "default"


def test_next_falls_through_to_later_rules_and_default():
    router = Router()
    seen = []
    router.text()(lambda m: seen.append("first") or NEXT)
    router.text("x")(lambda m: "second")
    router.default(lambda m: "default")
    assert router.dispatch(text("x")) == "second"
    assert router.dispatch(text("y")) == "default"
    assert seen == ["first", "first"]


def test_custom_matcher():
    router = Router()
    router.on(lambda m: m.get("AgentID") == "7")(lambda m: "agent 7")
    assert router.dispatch({"MsgType": "text", "AgentID": "7"}) == "agent 7"


def test_load_router_from_module_with_router_attribute():
    router = load_router("app.handlers.demo", Router)
    assert router.dispatch(text("你好")) == "你好,这是测试机器人"
    assert router.dispatch(text("echo me")) == "echo me"
    assert router.dispatch({"MsgType": "image"}) == "收到图片"
    assert router.dispatch({"MsgType": "event", "Event": "change_contact"}) is None


def test_load_router_with_register_function(tmp_path, monkeypatch):
    (tmp_path / "mybot_register.py").write_text(
        "def register(router):\n    router.default(lambda m: 'registered')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_router("mybot_register", Router).dispatch(text("x")) == "registered"


def test_load_router_rejects_module_without_router(tmp_path, monkeypatch):
    (tmp_path / "mybot_empty.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HandlerModuleError, match="mybot_empty"):
        load_router("mybot_empty", Router)


GEVENT_TIME_LIMIT = """
from gevent import monkey
monkey.patch_all()
import time
from app.routing import HandlerTimeout, dispatch_with_time_limit

finished = []

def slow(message):
    time.sleep(60)
    finished.append(True)
    return "late"

started = time.monotonic()
try:
    dispatch_with_time_limit(slow, {}, 0.2)
except HandlerTimeout as exc:
    waited = time.monotonic() - started
    print("timeout", "waited its limit" if waited >= 0.2 else waited, "finished" * len(finished))
    print(exc)
print(dispatch_with_time_limit(lambda m: "quick", {}, 0.2))
"""


def test_handler_past_its_time_limit_is_interrupted_under_gevent():
    import subprocess
    import sys

    from app.__main__ import PROJECT_ROOT

    result = subprocess.run(
        [sys.executable, "-c", GEVENT_TIME_LIMIT],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Stopped after its limit, not run to its end (60 s: the subprocess would time out first).
    assert lines[0] == "timeout waited its limit ", lines
    assert lines[1].startswith("handler still running after 0.2 s"), lines
    assert lines[2] == "quick"


def test_time_limit_is_not_applied_without_gevent():
    from app.routing import dispatch_with_time_limit

    assert dispatch_with_time_limit(lambda m: "ok", {}, 0.001) == "ok"
