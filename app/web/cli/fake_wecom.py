"""``flask fake-wecom``: the fake WeCom API for a developer's desk, keyed like this service.

It serves gettoken, message/send and the 微信客服 APIs on the loopback interface only, with the
corp id, secrets and agent id the running configuration uses (options override them), so a
service started with ``WECOM_API_BASE`` set to the printed URL talks to it unchanged.
"""

from __future__ import annotations

import dataclasses

import click
from flask import current_app
from flask.cli import with_appcontext

from app.devtools.fakewecom.server import (
    DEFAULT_MAX_LIFETIME,
    LOOPBACK_HOSTS,
    FakeWeCom,
    check_loopback_host,
    serve_until_stopped,
)

DEFAULT_PORT = 9999
DEFAULT_SECRET = "fake-app-secret"
DEFAULT_AGENT_ID = 1000002
DEFAULT_KF_ACCOUNT = "wkFAKEKF000001"


@dataclasses.dataclass(frozen=True)
class ConfiguredKeys:
    """What the fake must accept to serve this service: empty/None where nothing is set."""

    corp_id: str
    secret: str
    agent_id: int | None
    kf_secret: str
    other_apps: tuple[tuple[str, int | None], ...] = ()  # (secret, agent id) of more endpoints


def configured_keys() -> ConfiguredKeys:
    """The corp id, app secret, agent id and 微信客服 secret of the running configuration.

    The one place this command reads settings: the first app endpoint with a secret gives the
    app, the first kf endpoint with one the kf secret, further endpoints become more apps.
    """
    settings = current_app.extensions["wecom"].settings
    endpoints = list(settings.endpoints)
    app = next((s for s in endpoints if s.kind == "app" and s.secret), None)
    kf = next((s for s in endpoints if s.kind == "kf" and s.secret), None)
    others = tuple(
        (s.secret, int(s.agent_id) if s.agent_id else None)
        for s in endpoints
        if s.secret and s is not app and s is not kf
    )
    return ConfiguredKeys(
        corp_id=settings.corp_id,
        secret=app.secret if app else "",
        agent_id=int(app.agent_id) if app and app.agent_id else None,
        kf_secret=kf.secret if kf else "",
        other_apps=others,
    )


def _loopback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_loopback_host(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("fake-wecom")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=_loopback,
    help=f"Address to bind: a loopback address ({', '.join(LOOPBACK_HOSTS)}) only.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="0 picks a free port.")
@click.option("--corp-id", default=None, help="Default: WECOM_CORP_ID.")
@click.option(
    "--secret",
    default=None,
    help=f"The app's secret. Default: WECOM_SECRET, else {DEFAULT_SECRET}.",
)
@click.option(
    "--agent-id", type=int, default=None, help=f"Default: WECOM_AGENT_ID, else {DEFAULT_AGENT_ID}."
)
@click.option(
    "--kf-secret", default=None, help="A separate 微信客服 secret. Default: WECOM_KF_SECRET."
)
@click.option(
    "--kf-account",
    "kf_accounts",
    multiple=True,
    help=f"An open_kfid; repeatable. Default: {DEFAULT_KF_ACCOUNT}.",
)
@click.option("--expires-in", default=7200, show_default=True, help="gettoken's expires_in.")
@click.option(
    "--max-lifetime",
    default=DEFAULT_MAX_LIFETIME,
    show_default=True,
    help="Stop after this many seconds, so a forgotten fake does not linger.",
)
@with_appcontext
def fake_wecom(
    host: str,
    port: int,
    corp_id: str | None,
    secret: str | None,
    agent_id: int | None,
    kf_secret: str | None,
    kf_accounts: tuple[str, ...],
    expires_in: int,
    max_lifetime: float,
) -> None:
    """Run the fake WeCom API on loopback with this service's corp id and secrets.

    Prints the URL to set as WECOM_API_BASE first, then serves until Ctrl-C.
    """
    keys = configured_keys()
    corp_id = corp_id or keys.corp_id
    if not corp_id:
        raise click.UsageError("no corp id: set WECOM_CORP_ID or pass --corp-id")
    app_secret = secret or keys.secret or DEFAULT_SECRET
    app_agent = agent_id or keys.agent_id or DEFAULT_AGENT_ID
    separate_kf = kf_secret or keys.kf_secret
    if separate_kf == app_secret:
        separate_kf = ""  # WECOM_KF_SECRET unset: the app secret calls the kf APIs too
    fake = FakeWeCom(
        corp_id=corp_id,
        secret=app_secret,
        agent_id=app_agent,
        kf_secret=separate_kf or None,
        kf_accounts=kf_accounts or (DEFAULT_KF_ACCOUNT,),
        expires_in=expires_in,
        host=host,
        port=port,
    )
    for other_secret, other_agent in keys.other_apps:
        if other_secret not in (app_secret, separate_kf):
            try:
                fake.add_app(other_secret, other_agent)
            except ValueError:  # that agent id already belongs to another secret
                fake.add_app(other_secret, None)

    def announce(running: FakeWeCom) -> None:
        click.echo(running.base_url)
        click.echo(f"  corp id      {corp_id}")
        click.echo(f"  app secret   {_shown(secret, keys.secret, 'WECOM_SECRET', DEFAULT_SECRET)}")
        click.echo(f"  agent id     {app_agent}")
        kf_source = "from --kf-secret" if kf_secret else "from WECOM_KF_SECRET"
        click.echo(f"  kf secret    {kf_source if separate_kf else 'the app secret'}")
        click.echo(f"  kf accounts  {', '.join(kf_accounts or (DEFAULT_KF_ACCOUNT,))}")
        if keys.other_apps:
            click.echo(f"  more apps    {len(keys.other_apps)} from WECOM_ENDPOINTS")
        click.echo(f"Start the service with WECOM_API_BASE={running.base_url}")
        click.echo(f"Serving until Ctrl-C (at most {max_lifetime:.0f} s).", err=True)

    try:
        serve_until_stopped(fake, max_lifetime, announce)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; --port 0 picks a free port"
        ) from None


def _shown(option: str | None, configured: str, setting: str, default: str) -> str:
    """Where a secret came from; only the public default value is ever printed."""
    if option:
        return "from --secret"
    if configured:
        return f"from {setting}"
    return f"{default} (the default: set {setting}={default} for the service)"
