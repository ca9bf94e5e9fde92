"""Act as WeCom against a running service: verify the URL, send signed encrypted callbacks,
check and decrypt the passive reply. Used by ``flask simulate`` and by the end-to-end tests."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import xmltodict

from app.wecom import MessageCrypto, compute_signature, parse_message
from app.wecom.xmlsafe import parse_xml


class SimulationError(Exception):
    """The service answered something WeCom would not accept."""


@dataclass
class CallbackResult:
    status: int
    body: bytes
    elapsed: float
    reply: dict[str, Any] | None  # the decrypted passive reply, None for an empty answer


#: Sends one HTTP request: (method, url, query, body) -> (status, body). The default uses requests;
#: tests plug in Flask's test client.
Transport = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]


def requests_transport(
    timeout: float = 10.0,
    session: requests.Session | None = None,
    content_type: str = "text/xml; charset=utf-8",
) -> Transport:
    """Sends over HTTP with requests; the body goes as ``content_type``."""
    http = session or requests.Session()

    def send(method: str, url: str, query: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if body is not None else {}
        response = http.request(
            method, url, params=query, data=body, headers=headers, timeout=timeout
        )
        return response.status_code, response.content

    return send


def signed_query(token: str, encrypted: str) -> dict[str, str]:
    """The query WeCom signs a callback with: now, a fresh nonce, and the signature."""
    timestamp = str(int(time.time()))
    nonce = str(secrets.randbelow(10**10))
    signature = compute_signature(token, timestamp, nonce, encrypted)
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}


def build_message_xml(fields: dict[str, Any]) -> str:
    """A plaintext callback message; nested dicts and lists become nested elements."""
    return xmltodict.unparse({"xml": fields}, full_document=False)


class Simulator:
    """Signs and encrypts like WeCom does, for one callback URL."""

    def __init__(
        self,
        url: str,
        token: str,
        aes_key: str,
        corp_id: str,
        *,
        agent_id: str = "1000002",
        transport: Transport | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = MessageCrypto(aes_key, corp_id)
        self.transport = transport or requests_transport()

    def _signed_query(self, encrypted: str) -> dict[str, str]:
        return signed_query(self.token, encrypted)

    def verify_url(self) -> str:
        """Send the admin console's verification GET; return the echo after checking it."""
        plain = str(secrets.randbelow(10**19))
        echostr = self.crypto.encrypt(plain)
        query = self._signed_query(echostr)
        query["echostr"] = echostr
        status, body = self.transport("GET", self.url, query, None)
        if status != 200:
            raise SimulationError(f"verification answered {status}: {body[:200]!r}")
        if body != plain.encode():
            raise SimulationError(f"verification echoed {body[:200]!r}, expected {plain!r}")
        return plain

    def message_fields(self, msg_type: str, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "ToUserName": self.corp_id,
            "FromUserName": fields.pop("FromUserName", "zhangsan"),
            "CreateTime": str(int(time.time())),
            "MsgType": msg_type,
        }
        base.update(fields)
        if msg_type != "event":
            base.setdefault("MsgId", str(secrets.randbits(63)))
        base.setdefault("AgentID", self.agent_id)
        return base

    def send_text(self, content: str, **fields: Any) -> CallbackResult:
        return self.send_fields(self.message_fields("text", Content=content, **fields))

    def send_event(self, event: str, **fields: Any) -> CallbackResult:
        return self.send_fields(self.message_fields("event", Event=event, **fields))

    def send_kf_callback(self, token: str, open_kfid: str) -> CallbackResult:
        """The 微信客服 doorbell: a kf_msg_or_event with the sync Token and the account."""
        fields = {
            "ToUserName": self.corp_id,
            "CreateTime": str(int(time.time())),
            "MsgType": "event",
            "Event": "kf_msg_or_event",
            "Token": token,
            "OpenKfId": open_kfid,
        }
        return self.send_fields(fields)

    def send_fields(self, fields: dict[str, Any]) -> CallbackResult:
        return self.send_xml(build_message_xml(fields))

    def send_xml(self, plaintext: str) -> CallbackResult:
        """Encrypt, sign and POST one callback; decrypt and check the reply."""
        encrypted = self.crypto.encrypt(plaintext)
        envelope = xmltodict.unparse(
            {"xml": {"ToUserName": self.corp_id, "AgentID": self.agent_id, "Encrypt": encrypted}},
            full_document=False,
        )
        started = time.monotonic()
        status, body = self.transport(
            "POST", self.url, self._signed_query(encrypted), envelope.encode("utf-8")
        )
        elapsed = time.monotonic() - started
        reply = self.open_reply(body) if status == 200 else None
        return CallbackResult(status, body, elapsed, reply)

    def open_reply(self, body: bytes) -> dict[str, Any] | None:
        """Check an encrypted passive reply as WeCom would, and return its message dict."""
        if not body.strip():
            return None
        envelope = parse_xml(body)
        try:
            encrypted = envelope["Encrypt"]
            signature = envelope["MsgSignature"]
            timestamp = envelope["TimeStamp"]
            nonce = envelope["Nonce"]
        except (KeyError, TypeError):
            raise SimulationError(f"reply is not an encrypted envelope: {body[:200]!r}") from None
        if compute_signature(self.token, timestamp, nonce, encrypted) != signature:
            raise SimulationError("reply signature does not match")
        return parse_message(self.crypto.decrypt(encrypted))
