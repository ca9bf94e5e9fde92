"""What a handler may raise, and which of it is the process stopping, not the handler failing.

A handler can raise anything, ``BaseException`` included: ``SystemExit`` (``sys.exit()`` in a
handler), ``KeyboardInterrupt``, a ``gevent.Timeout`` it started itself. Each of those is the
handler failing: its job is recorded as failed and the worker carries on.

Two cases are the process stopping instead, and must propagate so that the job stays unfinished
and another worker takes it over (bounded by ``WECOM_HANDLER_ATTEMPTS``):

* ``greenlet.GreenletExit``: a greenlet being killed or collected. A handler that raises it
  itself is treated the same way; the attempt limit still ends its job as a dead letter.
* ``SystemExit`` or ``KeyboardInterrupt`` after gunicorn told this worker to stop. gunicorn's
  timeout (SIGABRT) and quit (SIGINT, SIGQUIT) handlers run on the main thread, which under gevent
  is whatever greenlet holds the CPU: a handler stuck in a loop receives the worker's own
  ``sys.exit``. The gunicorn hooks (``worker_abort``, ``worker_int``) call :func:`mark_stopping`
  before that exception is raised.
"""

from __future__ import annotations

try:
    from greenlet import GreenletExit
except ImportError:  # pragma: no cover - greenlet comes with gevent, a requirement

    class GreenletExit(BaseException):  # type: ignore[no-redef]
        """Stand-in so the checks below work without greenlet."""


_stopping = [False]  # a list, not a global statement: set once, read from every thread


def mark_stopping(stopping: bool = True) -> None:
    """This process is stopping: exits raised from now on are the process's, not a handler's.
    (``False`` undoes it, for tests.)"""
    _stopping[0] = stopping


def stopping() -> bool:
    return _stopping[0]


def is_shutdown(exc: BaseException) -> bool:
    """True when ``exc`` stops this greenlet or process and must not be recorded as a failure."""
    if isinstance(exc, GreenletExit):
        return True
    return stopping() and isinstance(exc, SystemExit | KeyboardInterrupt)


def describe(exc: BaseException) -> str:
    """The reason recorded on a job whose handler raised ``exc``."""
    text = str(exc)
    name = type(exc).__name__
    return f"handler raised {name}: {text}" if text else f"handler raised {name}"
