"""Typed errors of the WeCom server API (``qyapi.weixin.qq.com/cgi-bin/``).

Callers branch on the class (or the ``retryable`` / ``token_invalid`` / ``config_error`` /
``refusal`` flags), never on ``errmsg``: WeCom says its errmsg text may change, and it carries a
``hint`` and ``from ip`` that differ on every call.

``may_have_reached`` says whether WeCom may have acted on the request although no usable answer
came back (the connection broke after the request left, a timeout, an HTTP 5xx): a retry of such a
request can repeat it. A WeCom errcode is a clear answer, and so is a failure to connect.

Codes and their meaning come from WeCom's global error table (doc 90313) and the 微信客服 pages
(the team's protocol reference, ``wecom-protocol.md`` §7.5 and §8.9).
"""

from __future__ import annotations

from typing import Final

#: Transient failures: retry with backoff (-1 busy, 45009 rate limit, 45033 concurrency).
RETRYABLE_CODES: Final = frozenset({-1, 45009, 45033})

#: The access_token is bad: invalidate it, fetch a new one and retry the call once.
#: 40001 belongs here only for calls other than gettoken (for gettoken it means a wrong secret).
TOKEN_INVALID_CODES: Final = frozenset({40014, 42001, 41001, 40001})

#: Codes that mean the deployment is misconfigured; retrying cannot help. gettoken adds 40001.
CONFIG_CODES: Final = frozenset(
    {40013, 40091, 41002, 41004, 40056, 60020, 48002, 301002, 95000, 95004, 95017}
)

#: WeCom understood the request and said no; sending it again is pointless or harmful.
REFUSAL_CODES: Final = frozenset({95001, 95002, 95013, 95018, 81013, 45002, 45008})

_HINTS: Final[dict[int, str]] = {
    40001: "check the app secret (corpsecret) for this corp",
    40013: "check the CorpID (企业ID under 我的企业)",
    40091: "the secret is not valid for this corp (another corp's or a revoked secret?)",
    40056: "agentid does not name an app of this corp",
    48002: (
        "the app may not call this API; for 微信客服 add the app under 微信客服 → 可调用接口的应用"
    ),
    60020: (
        "this server's egress IP is not in the app's trusted-IP list (企业可信IP); "
        "add it in the admin console, it takes about a minute to apply"
    ),
    301002: "the access_token belongs to another app than the agentid in the request",
    95000: "open_kfid is not valid",
    95004: "open_kfid does not exist",
    95017: "the 微信客服 API switch is off for this app",
    95001: "5-message limit per customer message reached; wait for the customer",
    95002: "48-hour window since the customer's last message has passed",
}


def _default_hint(errcode: int | None, api: str) -> str | None:
    if errcode is None or (errcode == 40001 and api != "gettoken"):
        return None
    return _HINTS.get(errcode)


class WeComAPIError(Exception):
    """A WeCom API call failed.

    ``errcode`` is WeCom's code, or None when the failure happened below the API (HTTP status,
    connection, unparsable body). ``api`` names the endpoint, e.g. ``"message/send"``.
    ``may_have_reached``: see the module docstring.
    """

    retryable: bool = False
    token_invalid: bool = False
    config_error: bool = False
    refusal: bool = False

    def __init__(
        self,
        errcode: int | None,
        errmsg: str,
        api: str,
        *,
        http_status: int | None = None,
        hint: str | None = None,
        may_have_reached: bool = False,
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        self.http_status = http_status
        self.may_have_reached = may_have_reached
        self.hint = hint if hint is not None else _default_hint(errcode, api)
        if errcode is not None:
            head = f"WeCom {api} failed: errcode {errcode}"
        elif http_status is not None:
            head = f"WeCom {api} failed: HTTP {http_status}"
        else:
            head = f"WeCom {api} failed"
        text = f"{head}: {errmsg}" if errmsg else head
        if self.hint:
            text = f"{text} (hint: {self.hint})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses have other __init__ signatures; rebuild from the state instead.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[WeComAPIError], args: tuple[object, ...], state: dict[str, object]
) -> WeComAPIError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class WeComRetryableError(WeComAPIError):
    """Busy, rate-limited, HTTP 5xx or a transport failure: try again later."""

    retryable = True


class WeComTransportError(WeComRetryableError):
    """No usable answer: connection refused or reset, timeout, or a body that is not JSON.

    ``may_have_reached`` defaults to True: only a failure known to come before the request left
    (no connection) may say otherwise.
    """

    def __init__(
        self,
        errmsg: str,
        api: str,
        *,
        http_status: int | None = None,
        may_have_reached: bool = True,
    ) -> None:
        super().__init__(
            None, errmsg, api, http_status=http_status, may_have_reached=may_have_reached
        )


class WeComTokenError(WeComAPIError):
    """The access_token was refused (40014, 42001, 41001, 40001 outside gettoken)."""

    token_invalid = True


class WeComConfigError(WeComAPIError):
    """Wrong CorpID/secret/agentid/open_kfid, missing permission or trusted IP."""

    config_error = True


class WeComRefusalError(WeComAPIError):
    """WeCom refused this message (limits, closed session, nobody to deliver to)."""

    refusal = True


class TokenUnavailableError(WeComRetryableError):
    """Another worker holds the refresh lock and no token appeared within the wait."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg, "gettoken")


def error_for(errcode: int, errmsg: str, api: str) -> WeComAPIError:
    """The typed error for a non-zero ``errcode`` returned by ``api``."""
    if api == "gettoken" and errcode in (40001, 40091, 40013, 41002, 41004):
        return WeComConfigError(errcode, errmsg, api)
    if errcode in RETRYABLE_CODES:
        return WeComRetryableError(errcode, errmsg, api)
    if errcode in TOKEN_INVALID_CODES:
        return WeComTokenError(errcode, errmsg, api)
    if errcode in CONFIG_CODES:
        return WeComConfigError(errcode, errmsg, api)
    if errcode in REFUSAL_CODES:
        return WeComRefusalError(errcode, errmsg, api)
    return WeComAPIError(errcode, errmsg, api)


def error_for_http_status(status: int, api: str) -> WeComAPIError:
    """A non-200 HTTP answer: 5xx is transient (and may come from a gateway after WeCom acted on
    the request), anything else is not."""
    if status >= 500:
        return WeComRetryableError(
            None, "server error", api, http_status=status, may_have_reached=True
        )
    return WeComAPIError(None, "unexpected HTTP status", api, http_status=status)
