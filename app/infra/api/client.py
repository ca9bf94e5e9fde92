"""The WeCom server API client: application messages and 微信客服 (kf).

Blocking ``requests`` underneath, so it is cooperative once gevent has patched the process (the
gunicorn gevent worker does that before the app is loaded). One client per (CorpID, secret) and
per worker; the access_token is shared between workers through the store (see ``tokens.py``).

Every call goes through one retry loop (``retry.py``): transient failures are tried again within
the :class:`RetryPolicy`. A refused token (40014, 42001, 41001, 40001) is invalidated, replaced,
and the call tried once more. Everything else raises at once.

A retry after a lost answer can repeat a request WeCom already processed. ``kf_send_msg`` takes
a ``msgid`` (WeCom keeps them unique per kf account), so a repeat is refused rather than delivered
twice, and its ``on_maybe_reached`` hook tells the caller which tries may have got through.
``message/send`` has no key of its own: a try after one that may have got through carries WeCom's
duplicate check instead (``enable_duplicate_check`` with an interval reaching back to that try, see
:func:`duplicate_check_fields`), while a first try goes without, so intended repeats still go out.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import requests

from app.infra.api.errors import WeComAPIError, WeComTransportError
from app.infra.api.exchange import exchange
from app.infra.api.masking import install_log_masking, mask_url
from app.infra.api.retry import MaybeReached, RetryPolicy, with_retries
from app.infra.api.tokens import TokenProvider, TokenStore

log = logging.getLogger(__name__)

DEFAULT_API_BASE: Final = "https://qyapi.weixin.qq.com/cgi-bin/"

_MSGID_OK = re.compile(r"[0-9A-Za-z_-]{1,32}")

#: message/send's longest duplicate_check_interval: 4 h (protocol reference §7.2).
MAX_DUPLICATE_CHECK_SECONDS: Final = 14400
#: Added to the time since the first try: clock differences and the request's own travel.
DUPLICATE_CHECK_MARGIN: Final = 60

#: A request body, or a function building it anew for each try.
Body = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def duplicate_check_fields(elapsed: float) -> dict[str, int]:
    """message/send fields that make WeCom drop a repeat of a request sent ``elapsed`` seconds
    ago: the interval covers that time plus a margin, at most WeCom's 4 h (beyond that a repeat
    can no longer be recognised)."""
    interval = math.ceil(max(elapsed, 0.0)) + DUPLICATE_CHECK_MARGIN
    return {
        "enable_duplicate_check": 1,
        "duplicate_check_interval": min(interval, MAX_DUPLICATE_CHECK_SECONDS),
    }


def is_valid_kf_msgid(msgid: str) -> bool:
    """A kf/send_msg msgid: 1-32 characters of [0-9A-Za-z_-], unique per kf account."""
    return bool(_MSGID_OK.fullmatch(msgid))


class WeComClient:
    """Calls WeCom's server API for one app (CorpID + secret).

    ``agent_id`` is required for ``message/send``. ``session`` may be shared; a session the
    client creates itself is closed by :meth:`close`.
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        store: TokenStore,
        *,
        agent_id: int | None = None,
        api_base: str = DEFAULT_API_BASE,
        timeout: float | tuple[float, float] = (3.05, 10),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_wait_timeout: float = 15.0,
        refresh_margin: float = 300.0,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._secret = secret
        self._own_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        install_log_masking()
        self.tokens = TokenProvider(
            corp_id,
            secret,
            store,
            self._fetch_token,
            clock=clock,
            sleep=sleep,
            wait_timeout=token_wait_timeout,
            refresh_margin=refresh_margin,
        )

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id!r})"

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- generic ------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        api: str,
        *,
        body: Body | None = None,
        params: Mapping[str, str] | None = None,
        on_maybe_reached: MaybeReached | None = None,
    ) -> dict[str, Any]:
        """Call ``api`` (e.g. ``"message/send"``) with the access_token; returns the JSON answer.

        ``body`` may be a function: it is called for every try, so a retry can differ.

        Raises a :class:`WeComAPIError` subclass for a non-zero errcode or a transport failure.
        ``on_maybe_reached`` is called with the error of every try that may have reached WeCom
        though it failed (see ``retry.py``); a WeCom errcode is never such a try.
        """
        refreshed = False

        def attempt() -> dict[str, Any]:
            nonlocal refreshed
            # At most two rounds: the second only after WeCom refused the token.
            for _ in range(2):
                token = self.tokens.get_token()
                query = {**(params or {}), "access_token": token}
                try:
                    return self._exchange(method, api, query, body() if callable(body) else body)
                except WeComAPIError as exc:
                    if not exc.token_invalid or refreshed:
                        raise
                    refreshed = True
                    log.warning(
                        "WeCom %s refused the access_token (errcode %s); refreshing",
                        api,
                        exc.errcode,
                    )
                    self.tokens.invalidate(token)
            raise AssertionError("unreachable")  # pragma: no cover

        return with_retries(api, attempt, self.retry, self._sleep, on_maybe_reached)

    # -- application messages (message/send) ----------------------------------------------------
    def send_message(
        self,
        payload: Mapping[str, Any],
        *,
        maybe_sent_at: float | None = None,
        on_maybe_reached: MaybeReached | None = None,
    ) -> dict[str, Any]:
        """POST message/send. Fills ``agentid`` from the client when the payload lacks it.

        ``maybe_sent_at``: when an earlier try of this very message (another call, another
        worker) may have reached WeCom, its time; every try then carries the duplicate check.
        Otherwise the first try goes without it, and the tries after one that may have reached
        WeCom (``on_maybe_reached``, see :meth:`call`) carry it, reaching back to this call.

        The answer carries ``msgid`` and, on partial failure, ``invaliduser`` / ``invalidparty``
        / ``invalidtag`` with errcode 0.
        """
        body = dict(payload)
        if "agentid" not in body:
            if self.agent_id is None:
                raise ValueError("message/send needs an agentid: pass agent_id to WeComClient")
            body["agentid"] = self.agent_id
        started = self._clock()
        since = maybe_sent_at

        def reached(exc: WeComAPIError) -> None:
            nonlocal since
            if since is None:
                since = started
            if on_maybe_reached is not None:
                on_maybe_reached(exc)

        def body_for_try() -> dict[str, Any]:
            if since is None:
                return body
            elapsed = self._clock() - since
            if elapsed + DUPLICATE_CHECK_MARGIN > MAX_DUPLICATE_CHECK_SECONDS:
                log.warning(
                    "message/send: the first try was %.0f s ago, beyond WeCom's duplicate check "
                    "(%d s): a repeat may be delivered twice",
                    elapsed,
                    MAX_DUPLICATE_CHECK_SECONDS,
                )
            return {**body, **duplicate_check_fields(elapsed)}

        return self.call("POST", "message/send", body=body_for_try, on_maybe_reached=reached)

    # -- 微信客服 (kf) --------------------------------------------------------------------------
    def kf_sync_msg(
        self,
        token: str | None,
        open_kfid: str | None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> dict[str, Any]:
        """One page of kf/sync_msg: ``next_cursor``, ``has_more``, ``msg_list``.

        ``token`` is the Token of the kf_msg_or_event callback (valid 10 minutes); without it
        WeCom rate-limits the call strictly.
        """
        body: dict[str, Any] = {"limit": limit}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        if open_kfid:
            body["open_kfid"] = open_kfid
        return self.call("POST", "kf/sync_msg", body=body)

    def iter_kf_sync(
        self,
        token: str | None,
        open_kfid: str | None,
        cursor: str | None = None,
        *,
        limit: int = 1000,
        max_pages: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Yield sync_msg pages from ``cursor`` until ``has_more`` is 0, at most ``max_pages``.

        Keeps going over an empty ``msg_list`` while ``has_more`` is 1 (WeCom does send those).
        Each page is requested only after the previous one was handled, so persist
        ``page["next_cursor"]`` before asking for the next. After ``max_pages`` the last page's
        ``has_more`` tells whether more is waiting.
        """
        for _ in range(max_pages):
            page = self.kf_sync_msg(token, open_kfid, cursor, limit)
            yield page
            cursor = page.get("next_cursor") or cursor
            if not page.get("has_more"):
                return

    def kf_send_msg(
        self,
        touser: str,
        open_kfid: str,
        msgtype: str,
        content: Mapping[str, Any],
        *,
        msgid: str,
        on_maybe_reached: MaybeReached | None = None,
    ) -> dict[str, Any]:
        """POST kf/send_msg. ``content`` is the payload under ``msgtype``.

        ``msgid`` is the caller's: the same on every try of one message, so a retried request
        cannot deliver twice (WeCom refuses the repeat). ``on_maybe_reached``: see :meth:`call`.
        """
        if not is_valid_kf_msgid(msgid):
            raise ValueError("kf msgid must be 1-32 characters of [0-9A-Za-z_-]")
        body = {
            "touser": touser,
            "open_kfid": open_kfid,
            "msgid": msgid,
            "msgtype": msgtype,
            msgtype: dict(content),
        }
        return self.call("POST", "kf/send_msg", body=body, on_maybe_reached=on_maybe_reached)

    def kf_send_msg_on_event(
        self,
        code: str,
        msgtype: str,
        content: Mapping[str, Any],
        *,
        msgid: str,
        on_maybe_reached: MaybeReached | None = None,
    ) -> dict[str, Any]:
        """POST kf/send_msg_on_event (welcome / closing words). ``code`` is single-use, so a
        repeat of a try that used it is refused. ``on_maybe_reached``: see :meth:`call`."""
        if not is_valid_kf_msgid(msgid):
            raise ValueError("kf msgid must be 1-32 characters of [0-9A-Za-z_-]")
        body: dict[str, Any] = {
            "code": code,
            "msgid": msgid,
            "msgtype": msgtype,
            msgtype: dict(content),
        }
        return self.call(
            "POST", "kf/send_msg_on_event", body=body, on_maybe_reached=on_maybe_reached
        )

    # -- internals ----------------------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, int]:
        """gettoken with retries on transient failures; config errors raise at once."""

        def attempt() -> tuple[str, int]:
            query = {"corpid": self.corp_id, "corpsecret": self._secret}
            data = self._exchange("GET", "gettoken", query, None)
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComTransportError("gettoken answer has no access_token", "gettoken")
            return token, int(data.get("expires_in") or 7200)

        return with_retries("gettoken", attempt, self.retry, self._sleep)

    def _exchange(
        self,
        method: str,
        api: str,
        params: Mapping[str, str],
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        return exchange(self._session, method, self.api_base + api, api, params, body, self.timeout)


__all__ = [
    "DEFAULT_API_BASE",
    "MAX_DUPLICATE_CHECK_SECONDS",
    "RetryPolicy",
    "WeComClient",
    "duplicate_check_fields",
    "is_valid_kf_msgid",
    "mask_url",
]
