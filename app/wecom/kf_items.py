"""Reading 微信客服 items (the entries of kf/sync_msg's ``msg_list``): who wrote, what event."""

from __future__ import annotations

from typing import Any

CUSTOMER = 3  # origin of a message the WeChat customer wrote
EVENT = 4  # origin of a system event
SERVICER = 5  # origin of a message a servicer sent from the WeCom client


def origin_of(item: dict[str, Any]) -> int | None:
    try:
        return int(item.get("origin"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def event_type(item: dict[str, Any]) -> str:
    event = item.get("event")
    return str(event.get("event_type") or "") if isinstance(event, dict) else ""


def text_of(item: dict[str, Any]) -> str:
    text = item.get("text")
    return str(text.get("content") or "") if isinstance(text, dict) else ""


def has_welcome_code(item: dict[str, Any]) -> bool:
    """An ``enter_session`` event carrying a welcome_code (usable once, for 20 s)."""
    event = item.get("event")
    return event_type(item) == "enter_session" and bool(
        isinstance(event, dict) and event.get("welcome_code")
    )
