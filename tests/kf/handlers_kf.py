"""kf handlers for the tests: "hold NAME" answers once the test opens the gate NAME (see
tests.helpers.Gates), "boom" fails, "exit" raises SystemExit, "menu" answers a msgmenu, events
are answered when the test says so. Every run is counted by msgid."""

from __future__ import annotations

import collections

from app.kf import NEXT, KfRouter, MenuClick, MsgMenu
from tests.helpers import wait_at_gate

router = KfRouter()
RUNS: collections.Counter[str] = collections.Counter()
EVENTS: list[dict] = []


@router.on(lambda message: True)
def count(message: dict) -> object:
    RUNS[message["msgid"]] += 1
    return NEXT


@router.regex(r"^hold (\w+)$")
def held(message: dict, match) -> str:
    wait_at_gate(match.group(1))
    return f"released {match.group(1)}"


@router.text("boom")
def boom(message: dict) -> str:
    raise RuntimeError("handler bug")


@router.text("exit")
def exits(message: dict) -> str:
    raise SystemExit("a handler called sys.exit()")


@router.text("menu")
def menu(message: dict) -> MsgMenu:
    return MsgMenu([MenuClick("yes", "满意"), MenuClick("no", "不满意")], head_content="评价")


@router.menu_click("yes")
def clicked_yes(message: dict) -> str:
    return "谢谢好评"


@router.text("two")
def two(message: dict) -> list[str]:
    return ["first", "second"]


@router.event("user_recall_msg")
def recalled(message: dict) -> str:
    return "你撤回了一条消息"


@router.event()
def any_event(message: dict) -> object:
    EVENTS.append(message)
    return NEXT


@router.default
def echo(message: dict) -> str | None:
    text = message.get("text") or {}
    return text.get("content") or None
