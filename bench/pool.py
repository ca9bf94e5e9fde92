"""Signed, encrypted text callbacks, made in advance, as WeCom would send them.

A WeCom signature covers (token, timestamp, nonce, ciphertext) and never expires, so a request
can be built long before it is sent. Every request carries its own MsgId: the service records
each MsgId for dedup, and a repeated one would take the cheap "retry" path instead of running
the handler.
"""

from __future__ import annotations

import itertools
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.wecom import MessageCrypto, compute_signature

from .common import AES_KEY, AGENT_ID, CORP_ID, TOKEN

# MsgIds: a random 31-bit prefix per process, then a counter: unique within a run, and across
# runs with overwhelming odds (each run uses fresh stores anyway).
_MSG_IDS = itertools.count((secrets.randbits(31) << 32) + 1)


@dataclass(frozen=True)
class Callback:
    target: str  # path and query: "/?msg_signature=…&timestamp=…&nonce=…"
    body: bytes
    msg_id: str
    from_user: str
    content: str = ""

    def raw_http(self, host: str) -> bytes:
        """The whole HTTP/1.1 request, keep-alive, ready for a socket."""
        head = (
            f"POST {self.target} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Content-Type: text/xml; charset=utf-8\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "\r\n"
        )
        return head.encode("ascii") + self.body


class CallbackFactory:
    """Builds text-message callbacks for one app (token, EncodingAESKey, CorpID)."""

    def __init__(
        self,
        token: str = TOKEN,
        aes_key: str = AES_KEY,
        corp_id: str = CORP_ID,
        agent_id: str = AGENT_ID,
        path: str = "/",
    ) -> None:
        self.token = token
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.path = path
        self.crypto = MessageCrypto(aes_key, corp_id)

    def text(
        self, content: str, from_user: str = "zhangsan", msg_id: str | None = None
    ) -> Callback:
        """One callback, signed and timed now (CreateTime and timestamp), as WeCom sends it."""
        msg_id = msg_id or str(next(_MSG_IDS))
        now = str(int(time.time()))
        plain = (
            "<xml>"
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{from_user}]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID>"
            "</xml>"
        )
        encrypted = self.crypto.encrypt(plain)
        nonce = str(secrets.randbelow(10**10))
        signature = compute_signature(self.token, now, nonce, encrypted)
        query = urllib.parse.urlencode(
            {"msg_signature": signature, "timestamp": now, "nonce": nonce}
        )
        body = (
            "<xml>"
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            "</xml>"
        ).encode()
        return Callback(f"{self.path}?{query}", body, msg_id, from_user, content)

    def texts(self, count: int, users: int = 50, tag: str = "") -> Iterator[Callback]:
        """``count`` distinct text callbacks from ``users`` different members."""
        for index in range(count):
            yield self.text(f"压测消息 {tag}{index}", from_user=f"benchuser{index % users:04d}")

    def again(self, callbacks: Iterator[Callback]) -> Iterator[Callback]:
        """The same messages (MsgId, sender, text), signed and timed anew: a fresh copy of a
        request set for the next server, whose CreateTime is as recent as WeCom's would be."""
        for callback in callbacks:
            yield self.text(callback.content, callback.from_user, callback.msg_id)


def write_wrk_pool(path: Path, callbacks: Iterator[Callback]) -> int:
    """One request per line, ``<target> <body>``, for bench/wrk_callbacks.lua; returns the count."""
    written = 0
    with path.open("wb") as out:
        for callback in callbacks:
            if b"\n" in callback.body or " " in callback.target:
                raise ValueError("a pooled request must fit on one line")
            out.write(callback.target.encode("ascii") + b" " + callback.body + b"\n")
            written += 1
    return written
