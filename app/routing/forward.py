"""Forward each message to a business backend over HTTP: no Python needed on the user's side.

With ``WECOM_FORWARD_URL`` set, the endpoint's handler POSTs the message as JSON (WeCom's own field
names) to that URL. The backend answers ``{"code": 200, "data": "reply text"}`` (the guide's
business-API contract) or a plain text body, which becomes the reply; an empty ``data`` or body
means no reply. Anything else (another code, a 4xx/5xx, a timeout, a body that is neither) becomes
``WECOM_FORWARD_FALLBACK`` and a log line. The forwarder is an ordinary handler, so it obeys the
reply deadline and the delivery rules like any other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import requests

from app.infra import metrics
from app.routing.app_router import Router
from app.routing.kf_router import KfRouter
from app.settings import ForwardSettings

log = logging.getLogger(__name__)


#: Forwarded kf items carry this field, so one backend can serve apps and 微信客服.
KF_SOURCE = {"source": "kf"}


class Forwarder:
    def __init__(
        self, url: str, timeout: float, fallback: str, extra_fields: dict[str, Any] | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.fallback = fallback
        self.extra_fields = extra_fields or {}
        self._local = threading.local()

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
            response = self.session.post(
                self.url,
                data=body,
                timeout=self.timeout,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except requests.RequestException as exc:
            log.warning("forward of %s to the backend failed: %s", msg_id, exc)
            metrics.backend_call("forward", "unreachable", started)
            return self.fallback
        answer = self.interpret(response, msg_id)
        # interpret() hands back self.fallback itself on every failure, a new object otherwise.
        metrics.backend_call("forward", "fallback" if answer is self.fallback else "ok", started)
        return answer

    def interpret(self, response: requests.Response, msg_id: str) -> str | dict | None:
        if response.status_code != 200:
            log.warning("backend answered HTTP %d for %s", response.status_code, msg_id)
            return self.fallback
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type or response.content.lstrip().startswith(b"{"):
            try:
                answer = response.json()
            except ValueError:
                log.warning("backend answered invalid JSON for %s", msg_id)
                return self.fallback
            if not isinstance(answer, dict) or answer.get("code") != 200:
                log.warning("backend answered %.200s for %s", response.text, msg_id)
                return self.fallback
            data = answer.get("data")
            if data is None or data == "":
                return None
            if isinstance(data, str | dict):  # a dict is a reply object, e.g. an image
                return data
            return json.dumps(data, ensure_ascii=False)
        if content_type.startswith("text/") or not content_type:
            return response.content.decode("utf-8", "replace") or None
        log.warning("backend answered %s for %s, expected JSON or text", content_type, msg_id)
        return self.fallback


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
    messages = Forwarder(settings.url, settings.timeout, settings.fallback, KF_SOURCE)
    events = Forwarder(settings.url, settings.timeout, "", KF_SOURCE)
    router = KfRouter().with_welcome(welcome)
    router.on(lambda message: True, "message")(messages)
    router.on(lambda message: True, "event")(events)
    return router
