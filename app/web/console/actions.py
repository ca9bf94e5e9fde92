"""The console's state-changing requests: log in, log out, resend or discard a dead letter.

All are POSTs with the session's CSRF token (checked in the blueprint's gate; the login form's
token belongs to the not-yet-logged-in session). A resend reuses the engine exactly as
``flask deliveries resend`` does, in the background: the page shows the job, whose state moves
on to done (or back to dead) as the delivery ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.infra.store import JobState
from app.web import access
from app.web.console import admin_state, admin_token, console_blueprint, refuse

log = logging.getLogger(__name__)


def _client() -> str:
    return request.remote_addr or "-"


@console_blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        if access.logged_in(admin_token()):
            return redirect(url_for("console.overview"))
        return render_template("console/login.html", page="login")
    limiter = admin_state().limiter
    wait = limiter.retry_after(_client())
    if wait:
        log.warning("console: too many failed logins from %s; refused", _client())
        body = render_template("console/login.html", page="login", error="too_many", wait=wait)
        return body, 429
    if not access.csrf_valid():
        return refuse(400, "refused: CSRF token missing or wrong")
    if not access.token_matches(request.form.get("token", ""), admin_token()):
        limiter.failed(_client())
        log.warning("console: failed login from %s", _client())
        return render_template("console/login.html", page="login", error="wrong"), 401
    limiter.succeeded(_client())
    access.log_in(admin_token())
    log.info("console: login from %s", _client())
    return redirect(url_for("console.overview"))


@console_blueprint.post("/logout")
def logout() -> Response:
    access.log_out()
    log.info("console: logout from %s", _client())
    return redirect(url_for("console.login"))


@console_blueprint.post("/dead/resend")
def resend() -> Response:
    key = request.form.get("key", "")
    service = current_app.extensions["wecom"]
    engine = service.engine
    job = engine.take_dead_job(key) if key else None
    if job is None:
        flash(f"{key or 'that job'} is not a dead letter (any more)")
        return redirect(url_for("console.dead_letters"))
    engine.leases.hold(key)
    threading.Thread(
        target=_recover, args=(engine, job), name=f"wecom-console-resend-{key}", daemon=True
    ).start()
    log.info("console: resend of %s from %s", key, _client())
    flash(f"resending {key}")
    return redirect(url_for("console.job", key=key))


def _recover(engine: Any, job: Any) -> None:
    try:
        state = engine.outbox.recover(job)
        log.info("console: resend of %s ended %s", job.key, state.value)
    except Exception:
        log.exception("console: resend of %s failed", job.key)
    finally:
        engine.leases.release(job.key)


@console_blueprint.post("/dead/discard")
def discard() -> Response:
    key = request.form.get("key", "")
    store = current_app.extensions["wecom"].store
    changed = bool(key) and store.update_job(
        key,
        expect_states=(JobState.DEAD,),
        state=JobState.DONE,
        last_error="discarded from the console",
        now=time.time(),
    )
    if changed:
        log.info("console: discarded %s from %s", key, _client())
        flash(f"discarded {key}")
    else:
        flash(f"{key or 'that job'} is not a dead letter (any more)")
    return redirect(url_for("console.dead_letters"))
