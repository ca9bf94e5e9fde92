"""The HTTP side of a callback endpoint: query arguments and body in, bytes and status out.

Everything WeCom-specific happens in :mod:`app.wecom` (crypto, XML) and :mod:`app.jobs`
(routing, deadlines, delivery); this blueprint only moves bytes and headers and turns protocol
errors into a 4xx with a short reason. Each POST ends in one log line, its metrics and a console
entry (:mod:`app.web.callback_log`); a refused one's line says why.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from flask import Blueprint, Request, Response, current_app, request

from app.infra.metrics import CallbackNote, begin_callback, end_callback, note_refused
from app.jobs.kf_puller import is_doorbell
from app.web import callback_log
from app.web.request_input import (
    BODY_SECONDS,
    BodyTimeout,
    BodyTooLarge,
    TrustedProxies,
    arrival_time,
    read_body,
    timestamp_skew,
)
from app.web.url_check import SIGNED_ARGS, missing_args, verify_url
from app.wecom import WeComError, parse_message

log = logging.getLogger(__name__)


def _reject(status: int, reason: str, code: int | None = None) -> Response:
    """A refused callback: its one log line is the callback line (app.callbacks)."""
    detail = reason if code is None else f"{reason}, WeCom code {code}"
    note_refused(callback_log.reason_class(code, status), detail)
    return Response(reason + "\n", status=status, mimetype="text/plain")


@functools.lru_cache(maxsize=8)
def _trusted(spec: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(spec)


def callback_blueprint(endpoint_name: str, path: str) -> Blueprint:
    """A blueprint serving one callback URL (GET verification, POST messages) at ``path``."""
    blueprint = Blueprint(f"wecom_{endpoint_name}", __name__)

    @blueprint.get(path, endpoint="verify")
    def verify() -> Response:
        crypto = current_app.extensions["wecom"].endpoints[endpoint_name].crypto
        return verify_url(crypto, f"endpoint {endpoint_name}")

    @blueprint.post(path, endpoint="receive")
    def receive() -> Response:
        # The proxies resolved once: each use of ``request`` or ``current_app`` is a lookup.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        service = current_app.extensions["wecom"]
        endpoint = service.endpoints[endpoint_name]
        received_at = arrival_time(req.environ, _trusted(service.settings.trusted_proxies))
        note = CallbackNote(endpoint_name, endpoint.settings.kind, received_at=received_at)
        token = begin_callback(note)
        try:
            response = _receive(req, service, endpoint, note)
        finally:
            end_callback(token)
        try:
            callback_log.finish(note, response.status_code, req.remote_addr)
        except Exception:  # observing a callback must never cost its answer
            log.exception("could not record a callback on endpoint %s", endpoint_name)
        return response

    def _receive(req: Request, service: Any, endpoint: Any, note: CallbackNote) -> Response:
        settings = service.settings
        args = req.args
        missing = missing_args(SIGNED_ARGS, args)
        if missing:
            return _reject(400, f"missing query parameters: {', '.join(missing)}")
        if settings.timestamp_window:
            skew = timestamp_skew(args["timestamp"], time.time())
            if skew is None:
                return _reject(400, "timestamp is not a Unix time in seconds")
            if abs(skew) > settings.timestamp_window:
                return _reject(
                    403,
                    f"timestamp is {skew:+.0f} s from now, outside the "
                    f"{settings.timestamp_window} s window (WECOM_TIMESTAMP_WINDOW)",
                )
        try:
            body = read_body(req.environ, settings.max_body)
        except BodyTooLarge:
            response = _reject(413, f"body larger than {settings.max_body} bytes (WECOM_MAX_BODY)")
            response.headers["Connection"] = "close"  # the rest of the body was not read
            return response
        except BodyTimeout:
            response = _reject(408, f"body not received within {BODY_SECONDS:g} s")
            response.headers["Connection"] = "close"
            return response
        except Exception as exc:  # broken framing (a bad chunk size), a reset: the client's fault
            response = _reject(400, f"unreadable body ({type(exc).__name__})")
            response.headers["Connection"] = "close"
            return response
        if not body:
            return _reject(400, "empty body")
        try:
            plain = endpoint.crypto.decrypt_callback(
                body, args["msg_signature"], args["timestamp"], args["nonce"]
            )
            message = parse_message(plain)
        except WeComError as exc:
            return _reject(min(exc.http_status, 499), exc.detail, exc.code)
        except Exception as exc:  # no input may give a 500: whatever the parsers missed
            return _reject(400, f"malformed body ({type(exc).__name__})")
        callback_log.describe(note, message, settings.console_show_content)
        if is_doorbell(message):
            note.outcome = "doorbell"
        try:
            reply_xml = service.engine.respond(endpoint, message, note.received_at)
        except Exception:
            # The store could not record the message: not accepted, so WeCom must retry it.
            log.exception("could not accept a callback on endpoint %s", endpoint_name)
            return Response("temporarily unavailable\n", status=503, mimetype="text/plain")
        if reply_xml is None:
            return Response(b"", status=200, mimetype="text/plain")
        return Response(reply_xml, status=200, mimetype="application/xml")

    return blueprint
