"""The HTTP side of an intelligent-bot endpoint: GET verification, POST JSON callbacks.

The same safety as the XML side (:mod:`app.web.blueprint`): the body size limit (413), a 4xx
with one log line for anything WeCom would not send, never a 500 for any input.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.web.url_check import SIGNED_ARGS, missing_args, rejected, verify_url
from app.wecom import WeComError
from app.wecom.aibot import parse_bot_message

log = logging.getLogger(__name__)


def bot_blueprint(bot_name: str, path: str) -> Blueprint:
    blueprint = Blueprint(f"wecom_bot_{bot_name}", __name__)

    @blueprint.get(path, endpoint="verify")
    def verify() -> Response:
        crypto = current_app.extensions["wecom_bot"].bots[bot_name].crypto
        return verify_url(crypto, f"bot {bot_name}")

    @blueprint.post(path, endpoint="receive")
    def receive() -> Response:
        received_at = time.monotonic()
        missing = missing_args(SIGNED_ARGS)
        if missing:
            return rejected(400, f"missing query parameters: {', '.join(missing)}")
        limit = current_app.extensions["wecom"].settings.max_body
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return rejected(413, f"body larger than {limit} bytes (WECOM_MAX_BODY)")
        if not body:
            return rejected(400, "empty body")
        service = current_app.extensions["wecom_bot"]
        bot = service.bots[bot_name]
        nonce = request.args["nonce"]
        try:
            plain = bot.crypto.open(
                body, request.args["msg_signature"], request.args["timestamp"], nonce, limit
            )
            message = parse_bot_message(plain, max_bytes=limit)
        except WeComError as exc:
            return rejected(min(exc.http_status, 499), exc.detail, exc.code)
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
