"""Handlers for the multi-instance tests; every run is appended to WECOM_TEST_RECORD as
``<MsgId> <pid>``, so the tests count runs across processes and instances.

* ``sleep N``: sleeps N seconds, answers ``slept N``;
* ``hold``: the first run of a message blocks (its instance is about to be killed); a later
  run, after another instance took the job over, answers ``held`` at once.
* anything else is echoed.
"""

from __future__ import annotations

import os
import time

from app.routing import Router

router = Router()
HOLD_SECONDS = 60.0  # far longer than any test: only a kill ends it


def _record(message: dict) -> int:
    """Append this run; how many runs of the message were recorded before it."""
    return record_run(message.get("MsgId", ""))


def record_run(key: str) -> int:
    """Append ``<key> <pid>``; how many runs of ``key`` were recorded before this one."""
    path = os.environ["WECOM_TEST_RECORD"]
    with open(path, "a+", encoding="utf-8") as record:
        record.seek(0)
        earlier = sum(1 for line in record if line.split()[0] == key)
        record.write(f"{key} {os.getpid()}\n")
    return earlier


@router.regex(r"^sleep (\d+(?:\.\d+)?)$")
def sleepy(message: dict, match) -> str:
    _record(message)
    time.sleep(float(match.group(1)))
    return f"slept {match.group(1)}"


@router.text("hold")
def hold(message: dict) -> str:
    if _record(message) == 0:
        time.sleep(HOLD_SECONDS)
    return "held"


@router.default
def echo(message: dict) -> str | None:
    _record(message)
    return message.get("Content") or None
