"""Bound a handler's run time (``WECOM_HANDLER_TIMEOUT``) where the process can interrupt it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.infra.greenlets import gevent_patched
from app.routing.rules import Message


class HandlerTimeout(Exception):
    """A handler ran past WECOM_HANDLER_TIMEOUT; its job is recorded as failed."""


def dispatch_with_time_limit(
    dispatch: Callable[[Message], Any], message: Message, seconds: float
) -> Any:
    """``dispatch(message)``, interrupted after ``seconds`` at its next wait on I/O when gevent
    runs the process (a hung business API must not hold a job forever). Under a plain threaded
    server (``flask run``) a thread cannot be interrupted, so no limit applies there."""
    if seconds <= 0 or not gevent_patched():
        return dispatch(message)
    import gevent

    with gevent.Timeout(seconds, HandlerTimeout(f"handler still running after {seconds:g} s")):
        return dispatch(message)
