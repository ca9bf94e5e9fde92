"""Handlers for the observability tests: "sleep N" answers late, "flaky" fails while the file
named by WECOM_TEST_BROKEN exists (so a dead letter can be fixed and resent), the rest echoes."""

from __future__ import annotations

import os
import time

from app.routing import Router

router = Router()


@router.regex(r"^sleep (\d+(?:\.\d+)?)$")
def sleepy(message: dict, match) -> str:
    time.sleep(float(match.group(1)))
    return f"slept {match.group(1)}"


@router.text("flaky")
def flaky(message: dict) -> str:
    broken = os.environ.get("WECOM_TEST_BROKEN", "")
    if broken and os.path.exists(broken):
        raise RuntimeError("handler bug")
    return "fixed now"


@router.default
def echo(message: dict) -> str | None:
    return message.get("Content") or None
