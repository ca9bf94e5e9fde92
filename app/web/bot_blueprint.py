"""The HTTP side of an intelligent-bot endpoint: GET verification, POST JSON callbacks.

The same safety as the XML side (:mod:`app.web.blueprint`): the body size limit (413), a 4xx
with one log line for anything WeCom would not send, never a 500 for any input.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.wecom import WeComError
from app.wecom.aibot import parse_bot_message

log = logging.getLogger(__name__)

_SIGNED_ARGS = ("msg_signature", "timestamp", "nonce")


def _reject(status: int, reason: str, code: int | None = None) -> Response:
    log.warning(
        "rejected %s %s from %s: %s%s",
        request.method,
        request.path,
        request.remote_addr,
        reason,
        f" (WeCom code {code})" if code is not None else "",
    )
    return Response(reason + "\n", status=status, mimetype="text/plain")


def _missing(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not request.args.get(name)]


def bot_blueprint(bot_name: str, path: str) -> Blueprint:
    blueprint = Blueprint(f"wecom_bot_{bot_name}", __name__)

    @blueprint.get(path, endpoint="verify")
    def verify() -> Response:
        missing = _missing((*_SIGNED_ARGS, "echostr"))
        if missing:
            return _reject(400, f"missing query parameters: {', '.join(missing)}")
        bot = current_app.extensions["wecom_bot"].bots[bot_name]
        echostr = request.args["echostr"].replace(" ", "+")  # a '+' a proxy failed to encode
        try:
            plain = bot.crypto.verify_url(
                request.args["msg_signature"],
                request.args["timestamp"],
                request.args["nonce"],
                echostr,
            )
        except WeComError as exc:
            return _reject(min(exc.http_status, 499), exc.detail, exc.code)
        log.info("callback URL verified for bot %s", bot_name)
        return Response(plain, mimetype="text/plain")

    @blueprint.post(path, endpoint="receive")
    def receive() -> Response:
        received_at = time.monotonic()
        missing = _missing(_SIGNED_ARGS)
        if missing:
            return _reject(400, f"missing query parameters: {', '.join(missing)}")
        limit = current_app.extensions["wecom"].settings.max_body
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return _reject(413, f"body larger than {limit} bytes (WECOM_MAX_BODY)")
        if not body:
            return _reject(400, "empty body")
        service = current_app.extensions["wecom_bot"]
        bot = service.bots[bot_name]
        nonce = request.args["nonce"]
        try:
            plain = bot.crypto.open(
                body, request.args["msg_signature"], request.args["timestamp"], nonce, limit
            )
            message = parse_bot_message(plain, max_bytes=limit)
        except WeComError as exc:
            return _reject(min(exc.http_status, 499), exc.detail, exc.code)
        try:
            reply = service.respond(bot_name, message, received_at)
        except Exception:
            # The store could not record the message: not accepted, so WeCom may retry it.
            log.exception("could not accept a callback on bot %s", bot_name)
            return Response("temporarily unavailable\n", status=503, mimetype="text/plain")
        if reply is None:
            return Response(b"", status=200, mimetype="text/plain")
        try:
            sealed = bot.crypto.seal(reply, nonce)
        except (WeComError, TypeError, ValueError):
            log.exception("cannot encrypt the reply of bot %s; answered empty", bot_name)
            return Response(b"", status=200, mimetype="text/plain")
        return Response(sealed, status=200, mimetype="application/json")

    return blueprint


__all__ = ["bot_blueprint"]
