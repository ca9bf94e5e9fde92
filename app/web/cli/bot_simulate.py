"""``flask simulate bot …``: act as WeCom towards an intelligent-bot endpoint.

``text`` sends a message and follows its stream with a refresh about once a second, printing
the answer as it grows; ``enter`` shows the welcome; ``card KEY`` clicks a card button. Active
replies (``response_url``) come back to a small receiver this command runs on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from app.devtools.bot_simulator import BotResult, BotSimulator, ResponseCatcher
from app.devtools.simulator import SimulationError
from app.jobs.streams import NOTE_CONTINUED
from app.web.cli.service_target import resolve_target


@click.group("bot")
@click.option("--bot", "bot_name", default=None, help="Which bot (default: the first configured).")
@click.pass_context
@with_appcontext
def bot_group(ctx: click.Context, bot_name: str | None) -> None:
    """Act as WeCom towards an intelligent bot (智能机器人)."""
    service = current_app.extensions.get("wecom_bot")
    if service is None or not service.bots:
        raise click.ClickException("no intelligent bot is configured (WECOM_BOT_TOKEN)")
    name = bot_name or next(iter(service.bots))
    if name not in service.bots:
        raise click.BadParameter(f"no bot {name!r}; configured: {', '.join(service.bots)}")
    settings = service.bots[name].settings
    url = resolve_target(ctx.parent.params["url"] if ctx.parent else None).url.rstrip("/")
    catcher = ResponseCatcher()
    ctx.call_on_close(catcher.close)
    simulator = BotSimulator(
        url + settings.path, settings.token, settings.aes_key, response_url=catcher.url
    )
    ctx.obj = (simulator, catcher)


def _send(send: Any) -> BotResult:
    try:
        result = send()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the service: {exc}") from None
    click.echo(f"HTTP {result.status} in {result.elapsed * 1000:.0f} ms", err=True)
    if result.status != 200:
        click.echo(result.body.decode("utf-8", "replace"), err=True)
        sys.exit(1)
    return result


def _print_active(catcher: ResponseCatcher, wait: float) -> None:
    for post in catcher.wait(1, wait):
        body = post["body"]
        click.echo("(active reply through response_url)", err=True)
        if body.get("msgtype") == "markdown":
            click.echo(body["markdown"].get("content", ""))
        else:
            click.echo(json.dumps(body, ensure_ascii=False, indent=2))


@bot_group.command("verify")
@click.pass_obj
def bot_verify(obj: tuple[BotSimulator, ResponseCatcher]) -> None:
    """Send the admin console's URL verification."""
    try:
        echo = obj[0].verify_url()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"URL verified, echo {echo}")


@bot_group.command("text")
@click.argument("content")
@click.option("--user", default="zhangsan", show_default=True, help="from.userid")
@click.option("--chat", default="", help="A group chatid (default: a single chat).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
@click.option(
    "--wait", default=60.0, show_default=True, help="Seconds to wait for the rest of a long answer."
)
@click.pass_obj
def bot_text(
    obj: tuple[BotSimulator, ResponseCatcher],
    content: str,
    user: str,
    chat: str,
    interval: float,
    wait: float,
) -> None:
    """Send a text message and print the streamed answer as it grows."""
    simulator, catcher = obj
    first = _send(lambda: simulator.text(content, user=user, chatid=chat))
    if first.reply is None:
        click.echo("(empty answer)", err=True)
        return
    if first.reply.get("msgtype") not in ("stream", "stream_with_template_card"):
        click.echo(json.dumps(first.reply, ensure_ascii=False, indent=2))
        return
    shown = [""]

    def show(frame: dict[str, Any]) -> None:
        text = str(frame.get("content") or "")
        if text.startswith(shown[0]):
            click.echo(text[len(shown[0]) :], nl=False)
        else:  # a frame may replace the text (a note, a placeholder)
            click.echo("\n" + text, nl=False)
        shown[0] = text

    try:
        frames = simulator.follow(first, interval=interval, on_frame=show, user=user, chatid=chat)
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo()
    click.echo(f"(finished after {len(frames) - 1} refreshes)", err=True)
    if shown[0].endswith(NOTE_CONTINUED):
        _print_active(catcher, wait)


@bot_group.command("enter")
@click.option("--user", default="zhangsan", show_default=True, help="from.userid")
@click.pass_obj
def bot_enter(obj: tuple[BotSimulator, ResponseCatcher], user: str) -> None:
    """Open the single chat (enter_chat) and print the welcome."""
    simulator = obj[0]
    result = _send(lambda: simulator.send(simulator.event("enter_chat", user=user)))
    if result.reply is None:
        click.echo("(empty answer: no welcome)", err=True)
    elif result.reply.get("msgtype") == "text":
        click.echo(result.reply["text"]["content"])
    else:
        click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2))


@bot_group.command("card")
@click.argument("key")
@click.option("--task-id", default="demo_card", show_default=True)
@click.option("--card-type", default="button_interaction", show_default=True)
@click.option("--user", default="zhangsan", show_default=True, help="from.userid")
@click.option("--wait", default=5.0, show_default=True, help="Seconds to wait for an active reply.")
@click.pass_obj
def bot_card(
    obj: tuple[BotSimulator, ResponseCatcher],
    key: str,
    task_id: str,
    card_type: str,
    user: str,
    wait: float,
) -> None:
    """Click the button KEY of a template card (template_card_event)."""
    simulator, catcher = obj
    details = {"card_type": card_type, "event_key": key, "task_id": task_id}
    event = simulator.event("template_card_event", details, user=user)
    result = _send(lambda: simulator.send(event))
    if result.reply is not None:
        click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2))
        return
    click.echo("(empty answer)", err=True)
    _print_active(catcher, wait)
