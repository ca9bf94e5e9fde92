"""Handlers that misbehave: raise what no handler should, or hold the CPU.

"exit" calls sys.exit, "interrupt" raises KeyboardInterrupt, "base" a bare BaseException
subclass, "spin N" burns the CPU for N seconds without ever yielding, "huge N" answers 1.2 MB
after N seconds. Runs are appended to the
file named by WECOM_TEST_RECORD (when set), so a test can count them across worker processes.
"""

from __future__ import annotations

import os
import sys
import time

from app.routing import Router

router = Router()


class Unusual(BaseException):
    """Neither an Exception nor one of Python's own exits."""


def _record(message: dict) -> None:
    path = os.environ.get("WECOM_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as record:
            record.write(f"{message.get('MsgId')} {os.getpid()}\n")


@router.text("exit")
def leave(message: dict) -> str:
    _record(message)
    sys.exit(3)


@router.text("interrupt")
def interrupt(message: dict) -> str:
    _record(message)
    raise KeyboardInterrupt


@router.text("base")
def unusual(message: dict) -> str:
    _record(message)
    raise Unusual("not an Exception")


@router.regex(r"^spin (\d+(?:\.\d+)?)$")
def spin(message: dict, match) -> str:
    _record(message)
    until = time.monotonic() + float(match.group(1))
    while time.monotonic() < until:  # never yields: gevent cannot switch away
        pass
    return "spun"


@router.regex(r"^huge (\d+(?:\.\d+)?)$")
def huge(message: dict, match) -> str:
    """A late answer of 1.2 MB."""
    _record(message)
    time.sleep(float(match.group(1)))
    return "长" * 400_000


@router.default
def echo(message: dict) -> str | None:
    _record(message)
    return message.get("Content") or None
