"""``/console``: the operator's pages, server-rendered, usable without JavaScript and on a phone.

Every page but the login form needs a session (see :mod:`app.web.access`); every POST needs the
session's CSRF token; every answer carries the security headers. Read-only pages are in
:mod:`.pages`, the login and the actions on dead letters in :mod:`.actions`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, redirect, request, url_for

from app.web import access
from app.web.console.history import History

log = logging.getLogger(__name__)

console_blueprint = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

#: Reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})


@dataclass
class AdminState:
    """What the admin surface keeps per app (``app.extensions["wecom_admin"]``)."""

    history: History
    limiter: access.FailureLimiter = field(default_factory=access.FailureLimiter)


def admin_state() -> AdminState:
    return current_app.extensions["wecom_admin"]


def admin_token() -> str:
    return current_app.extensions["wecom"].settings.admin_token


def refuse(status: int, text: str) -> Response:
    """A plain refusal and its one log line."""
    log.warning(
        "console: %s %s from %s: %s", request.method, request.path, request.remote_addr, text
    )
    return Response(text + "\n", status=status, mimetype="text/plain")


@console_blueprint.before_request
def _gate() -> Response | None:
    admin_state().history.ensure_running()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not access.logged_in(admin_token()):
        if request.method == "GET":
            return redirect(url_for("console.login"))
        return refuse(401, "log in first")
    if request.method == "POST" and not access.csrf_valid():
        return refuse(400, "refused: CSRF token missing or wrong")
    return None


@console_blueprint.after_request
def _headers(response: Response) -> Response:
    return access.add_security_headers(response)


@console_blueprint.context_processor
def _template_globals() -> dict:
    return {"csrf_token": access.csrf_token}


from app.web.console import actions, pages  # noqa: E402  (routes register on the blueprint)

__all__ = ["AdminState", "actions", "console_blueprint", "pages"]
