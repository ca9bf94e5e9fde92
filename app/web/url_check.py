"""What every callback URL shares (app, 微信客服 and bot): the signed query, a refusal with one log
line, and WeCom's URL verification (the admin console's GET with ``echostr``)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request

from app.wecom import WeComError

log = logging.getLogger("app.web.blueprint")

SIGNED_ARGS = ("msg_signature", "timestamp", "nonce")


def missing_args(names: tuple[str, ...], args: Any = None) -> list[str]:
    """The names among ``names`` that the query (``args``, by default the request's) lacks."""
    if args is None:
        args = request.args
    return [name for name in names if not args.get(name)]


def rejected(status: int, reason: str, code: int | None = None) -> Response:
    """A 4xx with a short reason, and one log line saying why."""
    log.warning(
        "rejected %s %s from %s: %s%s",
        request.method,
        request.path,
        request.remote_addr,
        reason,
        f" (WeCom code {code})" if code is not None else "",
    )
    return Response(reason + "\n", status=status, mimetype="text/plain")


def verify_url(crypto: Any, label: str) -> Response:
    """Answer the verification GET with the decrypted ``echostr``, or refuse it."""
    missing = missing_args((*SIGNED_ARGS, "echostr"))
    if missing:
        return rejected(400, f"missing query parameters: {', '.join(missing)}")
    # Base64 never contains a space: one here is a '+' that a proxy failed to percent-encode.
    echostr = request.args["echostr"].replace(" ", "+")
    try:
        plain = crypto.verify_url(
            request.args["msg_signature"], request.args["timestamp"], request.args["nonce"], echostr
        )
    except WeComError as exc:
        return rejected(min(exc.http_status, 499), exc.detail, exc.code)
    log.info("callback URL verified for %s", label)
    return Response(plain, mimetype="text/plain")
