"""``flask`` commands: the WeCom simulator (and, as the service grows, operations commands)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.devtools.simulator import CallbackResult, SimulationError, Simulator
from app.web.cli.bot_simulate import bot_group
from app.web.cli.fake_wecom import fake_wecom
from app.web.cli.kf_simulate import kf_group
from app.web.cli.service_target import URL_HELP, cannot_reach, resolve_target


def register_cli(app: Flask) -> None:
    from app.web.cli.deliveries import deliveries

    app.cli.add_command(simulate)
    app.cli.add_command(deliveries)
    app.cli.add_command(fake_wecom)


def _endpoint_simulator(url: str, endpoint_name: str) -> Simulator:
    service = current_app.extensions["wecom"]
    try:
        endpoint = service.endpoints[endpoint_name]
    except KeyError:
        raise click.BadParameter(
            f"no endpoint {endpoint_name!r}; configured: {', '.join(service.endpoints)}",
            param_hint="--endpoint",
        ) from None
    settings = endpoint.settings
    base = url.rstrip("/")
    target = base + (settings.path if settings.path != "/" else "/")
    return Simulator(
        target,
        settings.token,
        settings.aes_key,
        settings.receive_id,
        agent_id=settings.agent_id or "1000002",
    )


def _print_result(result: CallbackResult) -> None:
    click.echo(f"HTTP {result.status} in {result.elapsed * 1000:.0f} ms", err=True)
    if result.status != 200:
        click.echo(result.body.decode("utf-8", "replace"), err=True)
        sys.exit(1)
    if result.reply is None:
        click.echo("(empty answer: no passive reply)", err=True)
        return
    if result.reply.get("MsgType") == "text":
        click.echo(result.reply.get("Content", ""))
    else:
        click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2))


@click.group()
@click.option("--url", default=None, metavar="URL", help=URL_HELP)
@click.option(
    "--endpoint",
    "endpoint_name",
    default=None,
    help="Which configured endpoint's keys and path to use (default: app; for `kf` commands "
    "the first 微信客服 endpoint, if any).",
)
@click.pass_context
@with_appcontext
def simulate(ctx: click.Context, url: str | None, endpoint_name: str | None) -> None:
    """Act as WeCom against a running service, with this app's keys.

    \b
    The service is found the way it chose its address (first one set wins):
      --url URL             e.g. http://127.0.0.1:5000 for `flask run`
      WECOM_SIMULATE_URL    e.g. https://wecom.example.com/base
      GUNICORN_BIND         HOST:PORT, as gunicorn.conf.py and `python -m app -p` use it
      PORT                  http://127.0.0.1:$PORT
      FLASK_RUN_PORT        http://127.0.0.1:$FLASK_RUN_PORT (with FLASK_RUN_HOST)
      (none of these)       http://127.0.0.1:8000, where scripts/run.sh serves
    """
    if ctx.invoked_subcommand == "bot":
        return  # the bot group takes its keys from the bot's settings
    if endpoint_name is None:
        endpoints = current_app.extensions["wecom"].endpoints
        kf = [name for name, e in endpoints.items() if e.settings.kind == "kf"]
        endpoint_name = kf[0] if ctx.invoked_subcommand == "kf" and kf else "app"
    ctx.obj = _endpoint_simulator(resolve_target(url).url, endpoint_name)


simulate.add_command(kf_group)
simulate.add_command(bot_group)


@simulate.command("verify")
@click.pass_obj
def simulate_verify(simulator: Simulator) -> None:
    """Send the admin console's URL verification."""
    try:
        echo = simulator.verify_url()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise cannot_reach(exc) from None
    click.echo(f"URL verified, echo {echo}")


@simulate.command("text")
@click.argument("content")
@click.option("--user", default="zhangsan", show_default=True, help="FromUserName")
@click.pass_obj
def simulate_text(simulator: Simulator, content: str, user: str) -> None:
    """Send a text message and print the reply."""
    _run(lambda: simulator.send_text(content, FromUserName=user))


@simulate.command("event")
@click.argument("event")
@click.option("--key", default=None, help="EventKey")
@click.option("--user", default="zhangsan", show_default=True, help="FromUserName")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra element of the message; repeatable.",
)
@click.pass_obj
def simulate_event(
    simulator: Simulator, event: str, key: str | None, user: str, fields: tuple[str, ...]
) -> None:
    """Send an event (click, subscribe, enter_agent, …) and print the reply."""
    extra = _parse_fields(fields)
    if key is not None:
        extra["EventKey"] = key
    _run(lambda: simulator.send_event(event, FromUserName=user, **extra))


@simulate.command("message")
@click.argument("msg_type")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="Element of the message; repeatable.",
)
@click.pass_obj
def simulate_message(simulator: Simulator, msg_type: str, fields: tuple[str, ...]) -> None:
    """Send a message of any MsgType (image, voice, location, …) with the given fields."""
    _run(lambda: simulator.send_fields(simulator.message_fields(msg_type, **_parse_fields(fields))))


@simulate.command("xml")
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.pass_obj
def simulate_xml(simulator: Simulator, path) -> None:
    """Encrypt and send a plaintext callback XML file as it is ('-' reads standard input)."""
    _run(lambda: simulator.send_xml(path.read()))


def _parse_fields(fields: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--field")
        parsed[name] = value
    return parsed


def _run(send) -> None:
    try:
        result = send()
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise cannot_reach(exc) from None
    _print_result(result)
