"""One HTTP exchange with WeCom's server API: JSON in, JSON out, a typed error for anything else.

No retries and no token handling here (see ``retry.py`` and ``client.py``). A transport failure
says whether the request may have reached WeCom: a failure to connect means it did not; a broken
connection after the request went out, or a timeout waiting for the answer, means it may have.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import requests
from urllib3.exceptions import ConnectTimeoutError

from app.infra.api.errors import WeComTransportError, error_for, error_for_http_status
from app.infra.api.masking import mask_url

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    api: str,
    params: Mapping[str, str],
    body: Mapping[str, Any] | None,
    timeout: float | tuple[float, float],
) -> dict[str, Any]:
    """Send one request to ``url`` (the endpoint ``api``); the answer if its errcode is 0.

    Raises the typed :class:`~app.infra.api.errors.WeComAPIError` for an errcode, a non-200
    status, an unreadable answer or a transport failure.
    """
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = JSON_CONTENT_TYPE
    started = time.monotonic()
    try:
        resp = session.request(
            method, url, params=params, data=data, headers=headers, timeout=timeout
        )
    except requests.RequestException as exc:
        # requests puts the full URL (token, secret) into its messages: mask, and drop the
        # chained exception so a logged traceback cannot show it either.
        reason = f"{type(exc).__name__}: {mask_url(str(exc))}"
        raise WeComTransportError(reason, api, may_have_reached=_request_left(exc)) from None
    try:
        log.debug(
            "WeCom %s %s -> HTTP %s in %.3fs",
            method,
            mask_url(resp.url or url),
            resp.status_code,
            time.monotonic() - started,
        )
        if resp.status_code != 200:
            raise error_for_http_status(resp.status_code, api)
        try:
            answer = json.loads(resp.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WeComTransportError("answer is not JSON", api, http_status=200) from None
    finally:
        resp.close()
    if not isinstance(answer, dict):
        raise WeComTransportError("answer is not a JSON object", api, http_status=200)
    errcode = answer.get("errcode", 0)
    if errcode:
        raise error_for(int(errcode), str(answer.get("errmsg", "")), api)
    return answer


def _request_left(exc: requests.RequestException) -> bool:
    """False only when no connection was made (refused, unresolvable, connect timeout): then
    WeCom cannot have seen the request. A reset or timeout after connecting may come after
    WeCom acted on it."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    # urllib3 wraps a failed connect (NewConnectionError is a ConnectTimeoutError) in MaxRetryError.
    return not isinstance(getattr(cause, "reason", None), ConnectTimeoutError)
