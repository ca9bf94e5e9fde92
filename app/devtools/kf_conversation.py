"""Play a WeChat customer of a 微信客服 account against a running service and the fake WeCom API.

One exchange: enqueue the customer's messages at the fake (its control API), ring the service's
doorbell (a signed kf_msg_or_event callback carrying the fake's Token), then collect what the
service sends that customer through kf/send_msg and kf/send_msg_on_event. No click, no Flask:
``flask simulate kf`` is a thin layer over this.

Waiting is a long poll on the fake (``GET /_fake/sent?after=N&wait=S``): each call returns as
soon as the service sends something, so there are no fixed sleeps. It is bounded in time (the
caller's ``wait``, then ``quiet`` seconds after the last answer) and in the number of calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Final

from app.devtools.fakewecom.control import FakeControl
from app.devtools.simulator import SimulationError, Simulator

#: The APIs through which the service answers a customer.
KF_ANSWER_APIS: Final = ("kf/send_msg", "kf/send_msg_on_event")
QUIET_SECONDS: Final = 0.5  # after an answer, wait this long for more before returning
MAX_POLLS: Final = 1000  # long polls per exchange, whatever else the fake is busy with


def answers_to(sent: Iterable[dict[str, Any]], user: str | None) -> list[dict[str, Any]]:
    """The kf answers among ``sent`` (the fake's records) that went to ``user`` (None: anyone)."""
    return [
        item
        for item in sent
        if item.get("api") in KF_ANSWER_APIS and (user is None or item.get("touser") == user)
    ]


def describe(item: dict[str, Any]) -> str:
    """One line for an answer: a text's content, else its type and payload as JSON."""
    body = item.get("body") or {}
    msgtype = body.get("msgtype")
    if msgtype == "text":
        return str(body.get("text", {}).get("content", ""))
    return json.dumps({"msgtype": msgtype, msgtype: body.get(msgtype)}, ensure_ascii=False)


def converse(
    simulator: Simulator,
    fake: FakeControl,
    open_kfid: str | None,
    user: str,
    messages: list[dict[str, Any]],
    wait: float,
    quiet: float = QUIET_SECONDS,
    expect: int | None = None,
) -> list[dict[str, Any]]:
    """Enqueue ``messages``, ring the doorbell and return the new answers to ``user``.

    Returns as soon as ``expect`` answers arrived (when given), once ``quiet`` seconds pass
    without a further answer after the first one, or when ``wait`` seconds have passed in all
    (then possibly with no answer).
    """
    mark = int(fake.stats()["sent"])  # only what is sent from now on counts
    spec: dict[str, Any] = {"messages": messages}
    if open_kfid:
        spec["open_kfid"] = open_kfid
    queued = fake.enqueue_kf(**spec)
    result = simulator.send_kf_callback(queued["token"], queued["open_kfid"])
    if result.status != 200:
        raise SimulationError(f"the service answered the callback with HTTP {result.status}")
    deadline = time.monotonic() + wait
    answers: list[dict[str, Any]] = []
    last_answer_at = 0.0
    for _ in range(MAX_POLLS):
        now = time.monotonic()
        window = deadline - now
        if answers:
            window = min(window, last_answer_at + quiet - now)
        if window <= 0:
            break
        items, mark = fake.sent_since(mark, wait=window)
        new = answers_to(items, user)
        if new:
            answers.extend(new)
            last_answer_at = time.monotonic()
            if expect is not None and len(answers) >= expect:
                break
    return answers
