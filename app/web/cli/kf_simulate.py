"""``flask simulate kf …``: play WeChat customers against the service and the fake WeCom API.

The fake (``python -m app.devtools.fakewecom``) holds the customer messages that kf/sync_msg
returns and records what the service sends. A command enqueues messages there through its
control API, fires the signed kf_msg_or_event callback at the service's endpoint, and prints
the answers the fake received for that customer. Traffic goes to the loopback interface only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import requests
from flask import current_app

from app.devtools.simulator import SimulationError, Simulator

LOOPBACK = ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")
POLL_SECONDS = 0.2

T = TypeVar("T")


class FakeWeComControl:
    """The few control calls of the fake the simulator needs (``/_fake/...``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        root = url.split("/cgi-bin/")[0].split("/_fake/")[0].rstrip("/")
        if not root.startswith(LOOPBACK):
            raise ValueError(f"the fake WeCom API runs on the loopback interface, not {url!r}")
        self.root = root
        self.timeout = timeout

    def _call(self, method: str, action: str, body: dict[str, Any] | None = None) -> dict:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        response = requests.request(
            method,
            f"{self.root}/_fake/{action}",
            data=data,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=self.timeout,
        )
        answer = response.json()
        if response.status_code != 200 or answer.get("errcode"):
            raise SimulationError(f"fake {action}: {answer.get('errmsg', response.status_code)}")
        return answer

    def enqueue(self, open_kfid: str | None, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": messages}
        if open_kfid:
            body["open_kfid"] = open_kfid
        return self._call("POST", "kf/enqueue", body)

    def sent(self) -> list[dict[str, Any]]:
        """Everything the service sent through kf/send_msg and kf/send_msg_on_event."""
        return [
            item
            for item in self._call("GET", "sent")["sent"]
            if item.get("api") in ("kf/send_msg", "kf/send_msg_on_event")
        ]


def answers_to(sent: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    return [item for item in sent if item.get("touser") == user]


def describe(item: dict[str, Any]) -> str:
    body = item.get("body") or {}
    msgtype = body.get("msgtype")
    if msgtype == "text":
        return str(body.get("text", {}).get("content", ""))
    return json.dumps({"msgtype": msgtype, msgtype: body.get(msgtype)}, ensure_ascii=False)


def converse(
    simulator: Simulator,
    fake: FakeWeComControl,
    open_kfid: str | None,
    user: str,
    messages: list[dict[str, Any]],
    wait: float,
) -> list[dict[str, Any]]:
    """Enqueue ``messages``, ring the doorbell, return the new answers to ``user`` (polled until
    none arrive for a moment, or ``wait`` seconds)."""
    before = len(answers_to(fake.sent(), user))
    queued = fake.enqueue(open_kfid, messages)
    result = simulator.send_kf_callback(queued["token"], queued["open_kfid"])
    if result.status != 200:
        raise SimulationError(f"the service answered the callback with HTTP {result.status}")
    deadline = time.monotonic() + wait
    new: list[dict[str, Any]] = []
    quiet_since = time.monotonic()
    for _ in range(int(wait / POLL_SECONDS) + 1):
        latest = answers_to(fake.sent(), user)[before:]
        if len(latest) > len(new):
            new, quiet_since = latest, time.monotonic()
        elif new and time.monotonic() - quiet_since > 0.5:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    return new


def _fake_option(fake_url: str | None) -> FakeWeComControl:
    url = fake_url or current_app.extensions["wecom"].settings.api_base
    try:
        return FakeWeComControl(url)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc}; pass --fake or set WECOM_API_BASE", param_hint="--fake"
        ) from None


_fake = click.option(
    "--fake",
    "fake_url",
    default=None,
    help="URL of the fake WeCom API (default: WECOM_API_BASE when it is on loopback).",
)
_account = click.option("--open-kfid", default=None, help="kf account (the fake's only one).")
_user = click.option("--user", default="wmSIMULATOR0001", show_default=True, help="Customer.")
_wait = click.option("--wait", default=10.0, show_default=True, help="Seconds to wait.")


def _print_answers(answers: list[dict[str, Any]]) -> None:
    if not answers:
        click.echo("(no answer)", err=True)
        return
    for item in answers:
        click.echo(describe(item))


@click.group("kf")
def kf_group() -> None:
    """微信客服: customers write to a kf account of the fake WeCom API, the service answers."""


@kf_group.command("text")
@click.argument("content")
@_fake
@_account
@_user
@_wait
@click.pass_obj
def kf_text(
    simulator: Simulator,
    content: str,
    fake_url: str | None,
    open_kfid: str | None,
    user: str,
    wait: float,
) -> None:
    """A customer writes CONTENT; print the service's answers."""
    fake = _fake_option(fake_url)
    message = {"external_userid": user, "text": content}
    _print_answers(_run(lambda: converse(simulator, fake, open_kfid, user, [message], wait)))


@kf_group.command("enter")
@click.option("--scene", default="", help="scene of the contact link.")
@_fake
@_account
@_user
@_wait
@click.pass_obj
def kf_enter(
    simulator: Simulator,
    scene: str,
    fake_url: str | None,
    open_kfid: str | None,
    user: str,
    wait: float,
) -> None:
    """A customer opens the chat (enter_session with a welcome_code); print the welcome."""
    fake = _fake_option(fake_url)
    event = {"external_userid": user, "event": "enter_session", "scene": scene}
    _print_answers(_run(lambda: converse(simulator, fake, open_kfid, user, [event], wait)))


@kf_group.command("callback")
@click.argument("token")
@click.option("--open-kfid", required=True, help="kf account with new messages.")
@click.pass_obj
def kf_callback(simulator: Simulator, token: str, open_kfid: str) -> None:
    """Only ring the doorbell: a kf_msg_or_event with TOKEN for the account."""
    result = _run(lambda: simulator.send_kf_callback(token, open_kfid))
    click.echo(f"HTTP {result.status} in {result.elapsed * 1000:.0f} ms")
    if result.status != 200:
        raise SystemExit(1)


@kf_group.command("sent")
@_fake
@click.option("--user", default=None, help="Only answers to this customer.")
def kf_sent(fake_url: str | None, user: str | None) -> None:
    """Print what the service sent through the fake, oldest first."""
    sent = _run(lambda: _fake_option(fake_url).sent())
    for item in answers_to(sent, user) if user else sent:
        click.echo(f"{item.get('touser')}\t{item.get('api')}\t{describe(item)}")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, requests.RequestException) as exc:
        raise click.ClickException(f"cannot reach the service or the fake: {exc}") from None
