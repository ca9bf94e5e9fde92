"""The ``--url`` of ``flask simulate``: which running service the simulator talks to.

The resolution itself is :mod:`app.devtools.service_url` (pure); this is its click glue.
"""

from __future__ import annotations

import os

import click

from app.devtools.service_url import ServiceURL, resolve_service_url

URL_HELP = (
    "Base URL of the running service. Default: WECOM_SIMULATE_URL, else the port of "
    "GUNICORN_BIND, PORT or FLASK_RUN_PORT on 127.0.0.1, else http://127.0.0.1:8000."
)
_META_KEY = "wecom.service_url"


def resolve_target(url_option: str | None) -> ServiceURL:
    """Resolve the service URL now (from the option and the environment) and remember it."""
    try:
        target = resolve_service_url(url_option, os.environ)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    click.get_current_context().meta[_META_KEY] = target
    return target


def cannot_reach(exc: OSError) -> click.ClickException:
    """The error for a service that did not answer, saying where it was looked for and why."""
    ctx = click.get_current_context(silent=True)
    target = ctx.meta.get(_META_KEY) if ctx is not None else None
    where = f" at {target.describe()}" if isinstance(target, ServiceURL) else ""
    return click.ClickException(
        f"cannot reach the service{where}: {root_cause(exc)}. Pass --url or set WECOM_SIMULATE_URL."
    )


def root_cause(exc: BaseException) -> str:
    """The socket-level reason ("Connection refused") under a requests/urllib3 error chain,
    without the request URL and query that their messages repeat."""
    current: BaseException | None = exc
    for _ in range(8):  # requests -> urllib3 MaxRetryError -> NewConnectionError -> socket
        if current is None:
            break
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        reason = getattr(current, "reason", None)
        current = (
            reason
            if isinstance(reason, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return type(exc).__name__
