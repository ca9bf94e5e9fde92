"""Forward each message to a business backend over HTTP: no Python needed on the user's side.

With ``WECOM_FORWARD_URL`` set, the endpoint's handler POSTs the message as JSON (WeCom's own field
names) to that URL. The backend answers ``{"code": 200, "data": "reply text"}`` (the guide's
business-API contract) or a plain text body, which becomes the reply; an empty ``data`` or body
means no reply. Anything else (another code, a 4xx/5xx, a timeout, a body that is neither) becomes
``WECOM_FORWARD_FALLBACK`` and a log line. The forwarder is an ordinary handler, so it obeys the
reply deadline and the delivery rules like any other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3

from app.infra import metrics
from app.infra.greenlets import gevent_patched
from app.routing.app_router import Router
from app.routing.kf_router import KfRouter
from app.settings import ForwardSettings

log = logging.getLogger(__name__)


#: Forwarded kf items carry this field, so one backend can serve apps and 微信客服.
KF_SOURCE = {"source": "kf"}
DEFAULT_MAX_BYTES = 1024 * 1024
CONNECT_TIMEOUT = 3.05
READ_SIZE = 64 * 1024


class ForwardFailed(Exception):
    """The backend gave no usable answer; the message says why, without the URL or the body."""


class Forwarder:
    """POSTs a message to the backend and turns its answer into a reply (see the module doc).

    ``timeout`` bounds the whole exchange, connection to last byte: a backend that trickles its
    answer is cut off at the deadline like one that never answers. Under gevent (gunicorn) the
    bound is exact; under a threaded server (``flask run``) a read that started before the
    deadline may overrun it by up to ``timeout``. Redirects are not followed, and an answer
    over ``max_bytes`` is not read further. Either way the fallback is the reply.
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        fallback: str,
        extra_fields: dict[str, Any] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.fallback = fallback
        self.extra_fields = extra_fields or {}
        self.max_bytes = max_bytes
        self._local = threading.local()

    def __repr__(self) -> str:  # the URL may carry credentials
        return f"{type(self).__name__}(timeout={self.timeout:g})"

    @property
    def session(self) -> requests.Session:
        # One session per thread (greenlet): connection reuse without sharing a pool across them.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def __call__(self, message: dict[str, Any]) -> str | dict | None:
        body = json.dumps({**message, **self.extra_fields}, ensure_ascii=False).encode("utf-8")
        msg_id = message.get("MsgId") or message.get("msgid") or "-"
        started = time.monotonic()
        try:
            status, content_type, content = self.fetch(body)
        except ForwardFailed as exc:
            log.warning("forward of %s to the backend failed: %s", msg_id, exc)
            metrics.backend_call("forward", "unreachable", started)
            return self.fallback
        answer = self.interpret(status, content_type, content, msg_id)
        # interpret() hands back self.fallback itself on every failure, a new object otherwise.
        metrics.backend_call("forward", "fallback" if answer is self.fallback else "ok", started)
        return answer

    def fetch(self, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) of the backend's answer; ForwardFailed otherwise."""
        deadline = time.monotonic() + self.timeout
        try:
            with _whole_call_limit(self.timeout):
                return self._exchange(body, deadline)
        except _Expired:
            raise ForwardFailed(f"no complete answer within {self.timeout:g} s") from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise ForwardFailed(f"no complete answer within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise ForwardFailed(f"{type(exc).__name__} while reading the answer") from None
        except requests.RequestException as exc:
            # The exception's text names the URL, query string included: only its kind is shown.
            raise ForwardFailed(f"{type(exc).__name__} (connection or protocol error)") from None
        except OSError as exc:
            raise ForwardFailed(f"{type(exc).__name__} while reading the answer") from None

    def _exchange(self, body: bytes, deadline: float) -> tuple[int, str, bytes]:
        response = self.session.post(
            self.url,
            data=body,
            timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout),
            headers={"Content-Type": "application/json; charset=utf-8"},
            allow_redirects=False,
            stream=True,
        )
        with contextlib.closing(response):
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200:
                return response.status_code, content_type, b""  # not read: not used
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise ForwardFailed(self._too_large())
            parts, size = [], 0
            while True:
                if time.monotonic() >= deadline:
                    raise _Expired
                part = response.raw.read1(READ_SIZE, decode_content=True)
                if not part:
                    break
                size += len(part)
                if size > self.max_bytes:
                    raise ForwardFailed(self._too_large())
                parts.append(part)
            return response.status_code, content_type, b"".join(parts)

    def _too_large(self) -> str:
        return f"the answer is larger than {self.max_bytes} bytes (WECOM_FORWARD_MAX_BYTES)"

    def interpret(
        self, status: int, content_type: str, content: bytes, msg_id: str
    ) -> str | dict | None:
        if status != 200:
            log.warning("backend answered HTTP %d for %s", status, msg_id)
            return self.fallback
        if "json" in content_type or content.lstrip().startswith(b"{"):
            try:
                answer = json.loads(content.decode("utf-8"))
            except (ValueError, RecursionError):
                log.warning("backend answered invalid JSON for %s", msg_id)
                return self.fallback
            if not isinstance(answer, dict) or answer.get("code") != 200:
                # Only a numeric code is shown: the answer's content stays out of the log.
                code = answer.get("code") if isinstance(answer, dict) else None
                shown = code if isinstance(code, int) else "missing or not a number"
                log.warning("backend answered code %s for %s, expected 200", shown, msg_id)
                return self.fallback
            data = answer.get("data")
            if data is None or data == "":
                return None
            if isinstance(data, str | dict):  # a dict is a reply object, e.g. an image
                return data
            return json.dumps(data, ensure_ascii=False)
        if content_type.startswith("text/") or not content_type:
            return content.decode("utf-8", "replace") or None
        log.warning("backend answered %.60s for %s, expected JSON or text", content_type, msg_id)
        return self.fallback


class _Expired(Exception):
    """The forward's total time ran out."""


@contextlib.contextmanager
def _whole_call_limit(seconds: float) -> Iterator[None]:
    """Under gevent, interrupt the exchange wherever it waits once ``seconds`` have passed."""
    if not gevent_patched():
        yield
        return
    import gevent

    with gevent.Timeout(seconds, _Expired()):
        yield


def forwarding_router(forwarder: Forwarder) -> Router:
    """A router that sends every message and event to the backend."""
    router = Router()
    router.default(forwarder)
    return router


def forwarding_kf_router(settings: ForwardSettings, welcome: str = "") -> KfRouter:
    """Every customer message and event goes to the backend, as the kf item plus
    ``"source": "kf"``; the backend's answer is sent like a handler's. When the backend fails, a
    customer gets the fallback text as for an app, but an event gets no answer. ``welcome``
    (WECOM_KF_WELCOME) answers enter_session before the backend is asked."""
    messages = Forwarder(
        settings.url, settings.timeout, settings.fallback, KF_SOURCE, settings.max_bytes
    )
    events = Forwarder(settings.url, settings.timeout, "", KF_SOURCE, settings.max_bytes)
    router = KfRouter().with_welcome(welcome)
    router.on(lambda message: True, "message")(messages)
    router.on(lambda message: True, "event")(events)
    return router
