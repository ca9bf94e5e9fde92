"""Handlers for the deadline and delivery tests: "hold NAME" waits until the test opens the gate
NAME (see tests.helpers.Gates), "sleep N" sleeps N seconds; both then answer.

Each run is counted in-process and, when WECOM_TEST_RECORD is set, appended to that file, so
tests that drive several gunicorn workers can count handler runs across processes.
"""

from __future__ import annotations

import collections
import os
import time

from app.routing import Router
from tests.helpers import wait_at_gate

router = Router()
RUNS: collections.Counter[str] = collections.Counter()


def _record(message: dict) -> None:
    key = message.get("MsgId") or message.get("Event", "")
    RUNS[key] += 1
    path = os.environ.get("WECOM_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as record:
            record.write(f"{key} {os.getpid()}\n")


@router.regex(r"^hold (\w+)$")
def held(message: dict, match) -> str:
    _record(message)
    wait_at_gate(match.group(1))
    return f"released {match.group(1)}"


@router.regex(r"^sleep (\d+(?:\.\d+)?)$")
def sleepy(message: dict, match) -> str:
    _record(message)
    time.sleep(float(match.group(1)))
    return f"slept {match.group(1)}"


@router.text("boom")
def boom(message: dict) -> str:
    _record(message)
    raise RuntimeError("handler bug")


@router.regex(r"^long(?: (\w+))?$")
def long_answer(message: dict, match) -> str:
    """4500 bytes: more than one message/send text; "long NAME" first holds at the gate NAME."""
    _record(message)
    if match.group(1):
        wait_at_gate(match.group(1))
    return "长" * 1500


@router.default
def echo(message: dict) -> str | None:
    _record(message)
    return message.get("Content") or None
