"""``flask simulate kf …``: play WeChat customers against the service and the fake WeCom API.

Thin click glue over :mod:`app.devtools.kf_conversation`; traffic goes to loopback only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import requests
from flask import current_app

from app.devtools.fakewecom.control import FakeControl, FakeControlError
from app.devtools.kf_conversation import answers_to, converse, describe
from app.devtools.simulator import SimulationError, Simulator
from app.web.cli.service_target import cannot_reach, root_cause

T = TypeVar("T")


def configured_fake_url() -> str:
    """Where the service itself calls the WeCom API (WECOM_API_BASE): the fake, when local."""
    return current_app.extensions["wecom"].settings.api_base


def _fake_control(fake_url: str | None) -> FakeControl:
    try:
        return FakeControl(fake_url or configured_fake_url())
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc}; pass --fake or set WECOM_API_BASE to the fake's URL", param_hint="--fake"
        ) from None


_fake = click.option(
    "--fake",
    "fake_url",
    default=None,
    help="URL of the fake WeCom API (default: WECOM_API_BASE when it is on loopback).",
)
_account = click.option("--open-kfid", default=None, help="kf account (the fake's only one).")
_user = click.option("--user", default="wmSIMULATOR0001", show_default=True, help="Customer.")
_wait = click.option(
    "--wait",
    default=10.0,
    show_default=True,
    help="Seconds to wait for answers; returns half a second after the last one.",
)


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
    fake = _fake_control(fake_url)
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
    fake = _fake_control(fake_url)
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
    fake = _fake_control(fake_url)
    for item in answers_to(_run(fake.sent), user):
        click.echo(f"{item.get('touser')}\t{item.get('api')}\t{describe(item)}")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except FakeControlError as exc:
        raise click.ClickException(f"the fake WeCom API refused: {exc}") from None
    except requests.RequestException as exc:  # the simulator's calls to the service
        raise cannot_reach(exc) from None
    except OSError as exc:  # FakeControl's calls (urllib)
        raise click.ClickException(
            f"cannot reach the fake WeCom API: {root_cause(exc)}. Start it with "
            "`flask fake-wecom` and set WECOM_API_BASE, or pass --fake."
        ) from None
