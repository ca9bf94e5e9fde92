"""The WeCom server API client: application messages and 微信客服 (kf).

Blocking ``requests`` underneath, so it is cooperative once gevent has patched the process (the
gunicorn gevent worker does that before the app is loaded). One client per (CorpID, secret) and
per worker; the access_token is shared between workers through the store (see ``tokens.py``).

Retries: transient failures (-1, 45009, 45033, HTTP 5xx, connection errors, timeouts) are retried
with exponential backoff and jitter, bounded by attempts and total time. A refused token
(40014, 42001, 41001, 40001) is invalidated, replaced, and the call retried once. Everything else
raises at once.

A retry after a read timeout can repeat a request WeCom already processed. ``kf_send_msg`` always
sends a ``msgid`` (WeCom keeps them unique per kf account) so a repeat is refused rather than
delivered twice; ``message/send`` has no such key, pass ``enable_duplicate_check`` in the payload
where a duplicate would hurt.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from app.infra.api.errors import (
    WeComAPIError,
    WeComTransportError,
    error_for,
    error_for_http_status,
)
from app.infra.api.tokens import TokenProvider, TokenStore

log = logging.getLogger(__name__)

DEFAULT_API_BASE: Final = "https://qyapi.weixin.qq.com/cgi-bin/"
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"

T = TypeVar("T")

_SECRET_PARAMS = re.compile(r"((?:access_token|corpsecret)=)[^&\s'\"<>)]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """``text`` with the values of access_token and corpsecret replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class MaskSecretsFilter(logging.Filter):
    """Masks access_token/corpsecret in records of a logger we do not own.

    urllib3 logs every request line at DEBUG, query string included; with DEBUG logging on,
    that would print the secret (gettoken) and the token (every call).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_masking(logger_name: str = "urllib3.connectionpool") -> None:
    """Attach :class:`MaskSecretsFilter` to ``logger_name`` once (idempotent)."""
    target = logging.getLogger(logger_name)
    if not any(isinstance(f, MaskSecretsFilter) for f in target.filters):
        target.addFilter(MaskSecretsFilter())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop for transient failures."""

    attempts: int = 4  # total tries, the first one included
    max_time: float = 20.0  # seconds from the first try after which no new try starts
    backoff: float = 0.25  # scale of the exponential wait
    max_backoff: float = 4.0  # cap on one wait


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
    def get_access_token(self) -> str:
        return self.tokens.get_token()

    def call(
        self,
        method: str,
        api: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call ``api`` (e.g. ``"message/send"``) with the access_token; returns the JSON answer.

        Raises a :class:`WeComAPIError` subclass for a non-zero errcode or a transport failure.
        """
        refreshed = False

        def attempt() -> dict[str, Any]:
            nonlocal refreshed
            # At most two rounds: the second only after WeCom refused the token.
            for _ in range(2):
                token = self.tokens.get_token()
                query = {**(params or {}), "access_token": token}
                try:
                    return self._request(method, api, query, body)
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

        return self._with_retries(api, attempt)

    # -- application messages (message/send) ----------------------------------------------------
    def send_message(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST message/send. Fills ``agentid`` from the client when the payload lacks it.

        The answer carries ``msgid`` and, on partial failure, ``invaliduser`` / ``invalidparty``
        / ``invalidtag`` with errcode 0.
        """
        body = dict(payload)
        if "agentid" not in body:
            if self.agent_id is None:
                raise ValueError("message/send needs an agentid: pass agent_id to WeComClient")
            body["agentid"] = self.agent_id
        return self.call("POST", "message/send", body=body)

    def send_text(self, touser: str | Sequence[str], content: str, **extra: Any) -> dict[str, Any]:
        """A text message (≤2048 UTF-8 bytes, else WeCom answers 45002)."""
        return self._send(touser, "text", {"content": content}, extra)

    def send_markdown(
        self, touser: str | Sequence[str], content: str, **extra: Any
    ) -> dict[str, Any]:
        return self._send(touser, "markdown", {"content": content}, extra)

    def send_image(
        self, touser: str | Sequence[str], media_id: str, **extra: Any
    ) -> dict[str, Any]:
        return self._send(touser, "image", {"media_id": media_id}, extra)

    def send_news(
        self, touser: str | Sequence[str], articles: Sequence[Mapping[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        """A news message of 1–8 articles (title, description, url, picurl)."""
        return self._send(touser, "news", {"articles": [dict(a) for a in articles]}, extra)

    def send_textcard(
        self,
        touser: str | Sequence[str],
        title: str,
        description: str,
        url: str,
        btntxt: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        card: dict[str, Any] = {"title": title, "description": description, "url": url}
        if btntxt is not None:
            card["btntxt"] = btntxt
        return self._send(touser, "textcard", card, extra)

    def send_template_card(
        self, touser: str | Sequence[str], card: Mapping[str, Any], **extra: Any
    ) -> dict[str, Any]:
        return self._send(touser, "template_card", dict(card), extra)

    # -- 微信客服 (kf) --------------------------------------------------------------------------
    def kf_sync_msg(
        self,
        token: str | None,
        open_kfid: str | None,
        cursor: str | None = None,
        limit: int = 1000,
        voice_format: int | None = None,
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
        if voice_format is not None:
            body["voice_format"] = voice_format
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
        """Yield sync_msg pages until ``has_more`` is 0, at most ``max_pages``.

        Keeps going over an empty ``msg_list`` while ``has_more`` is 1 (WeCom does send those).
        Persist ``page["next_cursor"]`` after handling each page.
        """
        for _ in range(max_pages):
            page = self.kf_sync_msg(token, open_kfid, cursor, limit)
            yield page
            cursor = page.get("next_cursor") or cursor
            if not page.get("has_more"):
                return
        log.warning("kf/sync_msg still has_more after %d pages; stopping this round", max_pages)

    def kf_send_msg(
        self,
        touser: str,
        open_kfid: str,
        msgtype: str,
        content: Mapping[str, Any],
        msgid: str | None = None,
    ) -> dict[str, Any]:
        """POST kf/send_msg. ``content`` is the payload under ``msgtype``.

        A ``msgid`` is generated when none is given, so a retried request cannot deliver twice.
        """
        if msgid is not None and not is_valid_kf_msgid(msgid):
            raise ValueError("kf msgid must be 1-32 characters of [0-9A-Za-z_-]")
        body = {
            "touser": touser,
            "open_kfid": open_kfid,
            "msgid": msgid or new_kf_msgid(),
            "msgtype": msgtype,
            msgtype: dict(content),
        }
        return self.call("POST", "kf/send_msg", body=body)

    def kf_send_msg_on_event(
        self,
        code: str,
        msgtype: str,
        content: Mapping[str, Any],
        msgid: str | None = None,
    ) -> dict[str, Any]:
        """POST kf/send_msg_on_event (welcome / closing words). ``code`` is single-use."""
        body: dict[str, Any] = {"code": code, "msgtype": msgtype, msgtype: dict(content)}
        if msgid:
            body["msgid"] = msgid
        return self.call("POST", "kf/send_msg_on_event", body=body)

    def kf_account_list(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """POST kf/account/list: ``account_list`` of {open_kfid, name, avatar, ...}."""
        return self.call("POST", "kf/account/list", body={"offset": offset, "limit": limit})

    # -- internals ----------------------------------------------------------------------------
    def _send(
        self,
        touser: str | Sequence[str],
        msgtype: str,
        content: dict[str, Any],
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        users = touser if isinstance(touser, str) else "|".join(touser)
        payload: dict[str, Any] = {"touser": users, "msgtype": msgtype, msgtype: content}
        payload.update(extra)
        return self.send_message(payload)

    def _fetch_token(self) -> tuple[str, int]:
        """gettoken with retries on transient failures; config errors raise at once."""

        def attempt() -> tuple[str, int]:
            data = self._request(
                "GET", "gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}, None
            )
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComTransportError("gettoken answer has no access_token", "gettoken")
            return token, int(data.get("expires_in") or 7200)

        return self._with_retries("gettoken", attempt)

    def _with_retries(self, api: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` again on transient errors of ``api`` itself.

        Errors of a nested gettoken were already retried inside it and are not retried again,
        so the total time stays bounded by the two loops, not their product.
        """
        policy = self.retry

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, WeComAPIError) and exc.retryable and exc.api == api

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "WeCom %s attempt %d failed (%s); retrying in %.2fs",
                api,
                state.attempt_number,
                exc,
                wait,
            )

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(max(policy.attempts, 1)) | stop_after_delay(policy.max_time),
            wait=wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff),
            sleep=self._sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
        return retrying(fn)

    def _request(
        self,
        method: str,
        api: str,
        params: Mapping[str, str],
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """One HTTP exchange; raises the typed error for anything but errcode 0."""
        url = self.api_base + api
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = JSON_CONTENT_TYPE
        started = time.monotonic()
        try:
            resp = self._session.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            # requests puts the full URL (token, secret) into its messages: mask, and drop the
            # chained exception so a logged traceback cannot show it either.
            reason = f"{type(exc).__name__}: {mask_url(str(exc))}"
            raise WeComTransportError(reason, api) from None
        try:
            elapsed = time.monotonic() - started
            log.debug(
                "WeCom %s %s -> HTTP %s in %.3fs",
                method,
                mask_url(resp.url or url),
                resp.status_code,
                elapsed,
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


_MSGID_OK = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def new_kf_msgid() -> str:
    """A kf/send_msg msgid: ≤32 bytes of [0-9a-zA-Z_-], unique per kf account."""
    return uuid.uuid4().hex


def is_valid_kf_msgid(msgid: str) -> bool:
    return bool(_MSGID_OK.match(msgid))
