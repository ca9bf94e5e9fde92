"""Run a handler beside the request that waits for it, for at most the request's budget.

Under gevent the obvious way (spawn a greenlet, wait on an event with a timeout) sends every
callback through the hub three times: the spawn is a loop callback, the handler's end wakes the
waiter through another, and the wait arms and disarms a timer. For the common handler that
answers at once without waiting on I/O (a keyword bot, an echo) that round trip cost more than
the handler. Here the request's greenlet switches straight into a fresh greenlet running the
handler, whose parent it is:

* the handler returns without blocking: its greenlet ends and control comes straight back, with
  no hub iteration, no timer fired and no event;
* the handler blocks on I/O: its greenlet switches to the hub like any other, and the request's
  greenlet sleeps until whichever comes first: the handler ending (it comes back to its parent)
  or a timer at the end of the budget. On the timer, the handler's greenlet is handed to the hub
  as its parent, so that its later end goes there and never into the request greenlet, which has
  moved on to answering.

Without gevent (``flask run``, threads) the handler runs in a daemon thread and the request waits
on an event, as before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from app.routing.time_limit import gevent_patched

_FINISHED = object()  # a handler greenlet came back: its handler returned
_BUDGET_OVER = object()  # the timer came first


def run_beside(
    target: Callable[..., None], args: tuple[Any, ...], seconds: float, done: threading.Event
) -> None:
    """Call ``target(*args)`` and return once it has returned or ``seconds`` have passed,
    whichever is first; past that it goes on by itself. ``target`` sets ``done`` when it ends
    (the thread path waits on it) and must not raise except to stop its greenlet or process."""
    if not gevent_patched():
        threading.Thread(target=target, args=args, daemon=True, name="wecom-handler").start()
        done.wait(max(seconds, 0.0))
        return
    _run_beside_greenlet(target, args, seconds)


def _run_beside_greenlet(
    target: Callable[..., None], args: tuple[Any, ...], seconds: float
) -> None:
    import gevent
    from greenlet import getcurrent

    hub = gevent.get_hub()
    if seconds <= 0:  # no budget left: answer now, let the handler run on its own
        gevent.spawn(target, *args)
        return
    me = getcurrent()
    worker = _take_idle(hub)
    worker.parent = me  # its end of this handler comes back here...
    timer = hub.loop.timer(seconds)
    timer.start(me.switch, _BUDGET_OVER)
    try:
        worker.switch(target, args)
    finally:
        timer.close()
        if worker.parent is me:
            worker.parent = hub  # ...unless this greenlet has moved on to answering


#: Handler greenlets waiting for their next handler. Making and ending a greenlet costs about ten
#: times a switch into one, so finished ones wait here (up to MAX_IDLE) to be used again.
_IDLE: list[Any] = []
MAX_IDLE = 256


def _take_idle(hub: Any) -> Any:
    from greenlet import greenlet

    while _IDLE:
        worker = _IDLE.pop()
        if not worker.dead:
            return worker
    return greenlet(_handler_loop, parent=hub)


def _handler_loop(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    """A handler greenlet's life: run a handler, then wait among the idle ones for the next.

    Each handler runs in a fresh ``contextvars`` context, as it would in a new greenlet.
    """
    import contextvars

    import gevent
    from greenlet import GreenletExit, getcurrent

    hub = gevent.get_hub()
    me = getcurrent()
    while True:
        try:
            contextvars.Context().run(target, *args)
        except GreenletExit:
            return  # this greenlet was stopped: it simply ends
        except BaseException:  # only a stop of the process gets here (see run_beside)
            # As for a spawned greenlet: the hub reports it, and a SystemExit or
            # KeyboardInterrupt goes on to the main greenlet, ending the worker.
            hub.handle_error(me, *sys.exc_info())
        if len(_IDLE) >= MAX_IDLE:
            return  # ends: back to the parent (the waiting request, or the hub)
        _IDLE.append(me)
        try:
            if me.parent is hub:  # a late handler: nobody waits for it
                target, args = hub.switch()
            else:
                target, args = me.parent.switch(_FINISHED)
        except GreenletExit:
            return
