"""Handlers for the deadline and delivery tests: "sleep N" sleeps N seconds, then answers.

Each run is counted in-process and, when WECOM_TEST_RECORD is set, appended to that file, so
tests that drive several gunicorn workers can count handler runs across processes.
"""

from __future__ import annotations

import collections
import os
import time

from app.routing import Router

router = Router()
RUNS: collections.Counter[str] = collections.Counter()


def _record(message: dict) -> None:
    key = message.get("MsgId") or message.get("Event", "")
    RUNS[key] += 1
    path = os.environ.get("WECOM_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as record:
            record.write(f"{key} {os.getpid()}\n")


@router.regex(r"^sleep (\d+(?:\.\d+)?)$")
def sleepy(message: dict, match) -> str:
    _record(message)
    time.sleep(float(match.group(1)))
    return f"slept {match.group(1)}"


@router.text("boom")
def boom(message: dict) -> str:
    _record(message)
    raise RuntimeError("handler bug")


@router.text("long")
def long_answer(message: dict) -> str:
    _record(message)
    time.sleep(float(os.environ.get("WECOM_TEST_LONG_SLEEP", "0")))
    return "长" * 1500  # 4500 bytes: more than one message/send text


@router.default
def echo(message: dict) -> str | None:
    _record(message)
    return message.get("Content") or None
