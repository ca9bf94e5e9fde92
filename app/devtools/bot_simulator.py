"""Act as WeCom towards an intelligent-bot endpoint: sign and encrypt JSON callbacks, check and
open the encrypted replies, follow a stream with refresh callbacks, and receive the active
replies sent to ``response_url``. Used by ``flask simulate bot`` and the tests."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from app.devtools.simulator import (
    SimulationError,
    Transport,
    requests_transport,
    signed_query,
)
from app.wecom import MessageCrypto, compute_signature


@dataclass
class BotResult:
    status: int
    body: bytes
    elapsed: float
    reply: dict[str, Any] | None  # the decrypted reply; None for an empty answer

    @property
    def stream(self) -> dict[str, Any]:
        if not self.reply or "stream" not in self.reply:
            raise SimulationError(f"the answer is not a stream: {self.reply!r}")
        return self.reply["stream"]


def json_transport(timeout: float = 10.0, session: requests.Session | None = None) -> Transport:
    return requests_transport(timeout, session, content_type="application/json")


class BotSimulator:
    """Signs and encrypts like WeCom does, for one bot URL (receiveid ``""``)."""

    def __init__(
        self,
        url: str,
        token: str,
        aes_key: str,
        *,
        transport: Transport | None = None,
        aibotid: str = "AIBOTDEV",
        response_url: str = "",
    ) -> None:
        self.url = url
        self.token = token
        self.crypto = MessageCrypto(aes_key, "")
        self.transport = transport or json_transport()
        self.aibotid = aibotid
        self.response_url = response_url

    def _query(self, encrypted: str) -> dict[str, str]:
        return signed_query(self.token, encrypted)

    def verify_url(self) -> str:
        plain = str(secrets.randbelow(10**19))
        echostr = self.crypto.encrypt(plain)
        query = {**self._query(echostr), "echostr": echostr}
        status, body = self.transport("GET", self.url, query, None)
        if status != 200 or body != plain.encode():
            raise SimulationError(f"verification answered {status}: {body[:200]!r}")
        return plain

    # -- building callbacks ---------------------------------------------------------------------
    def message(
        self,
        msgtype: str,
        payload: Any = None,
        *,
        user: str = "zhangsan",
        chatid: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "msgid": secrets.token_hex(12),
            "aibotid": self.aibotid,
            "chattype": "group" if chatid else "single",
            "from": {"userid": user},
            "msgtype": msgtype,
        }
        if chatid:
            message["chatid"] = chatid
        if msgtype not in ("stream",) and self.response_url:
            message["response_url"] = self.response_url
        if payload is not None:
            message[msgtype] = payload
        message.update(extra)
        return message

    def event(
        self, eventtype: str, details: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        event: dict[str, Any] = {"eventtype": eventtype}
        if details is not None:
            event[eventtype] = details
        message = self.message("event", event, **kwargs)
        message["create_time"] = int(time.time())
        if eventtype != "template_card_event":
            message.pop("response_url", None)
        return message

    # -- sending -----------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> BotResult:
        plain = json.dumps(message, ensure_ascii=False)
        encrypted = self.crypto.encrypt(plain)
        query = self._query(encrypted)
        body = json.dumps({"encrypt": encrypted}).encode()
        started = time.monotonic()
        status, answer = self.transport("POST", self.url, query, body)
        elapsed = time.monotonic() - started
        reply = self.open_reply(answer, query["nonce"]) if status == 200 else None
        return BotResult(status, answer, elapsed, reply)

    def open_reply(self, body: bytes, nonce: str) -> dict[str, Any] | None:
        """Check an encrypted reply as WeCom would: signature, our nonce, receiveid ``""``."""
        if not body.strip():
            return None
        try:
            envelope = json.loads(body)
            encrypted = envelope["encrypt"]
            signature = envelope["msgsignature"]
            timestamp = str(envelope["timestamp"])
            reply_nonce = envelope["nonce"]
        except (ValueError, KeyError, TypeError):
            raise SimulationError(
                f"the reply is not an encrypted envelope: {body[:200]!r}"
            ) from None
        if reply_nonce != nonce:
            raise SimulationError("the reply's nonce is not the callback's")
        if compute_signature(self.token, timestamp, reply_nonce, encrypted) != signature:
            raise SimulationError("the reply's signature does not match")
        return json.loads(self.crypto.decrypt(encrypted))

    def text(self, content: str, **kwargs: Any) -> BotResult:
        return self.send(self.message("text", {"content": content}, **kwargs))

    def refresh(self, stream_id: str, **kwargs: Any) -> BotResult:
        return self.send(self.message("stream", {"id": stream_id}, **kwargs))

    def follow(
        self,
        first: BotResult,
        *,
        interval: float = 1.0,
        timeout: float = 400.0,
        on_frame: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Refresh the stream of ``first`` every ``interval`` seconds until ``finish``, as WeCom
        does; returns every frame, the first included."""
        frames = [first.stream]
        if on_frame:
            on_frame(first.stream)
        deadline = time.monotonic() + timeout
        while not frames[-1].get("finish"):
            if time.monotonic() >= deadline:
                raise SimulationError(f"the stream did not finish within {timeout} s")
            time.sleep(interval)
            result = self.refresh(frames[0]["id"], **kwargs)
            if result.status != 200:
                raise SimulationError(f"a refresh answered {result.status}: {result.body[:200]!r}")
            frames.append(result.stream)
            if on_frame:
                on_frame(result.stream)
        return frames


class ResponseCatcher:
    """WeCom's end of ``response_url``: records each POST and answers ``errcode`` 0 (or the
    errcode set with :meth:`fail_with`)."""

    def __init__(self) -> None:
        self._posts: list[dict[str, Any]] = []
        self._errcode = 0
        self._changed = threading.Condition()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsable": raw.decode("utf-8", "replace")}
                with catcher._changed:
                    catcher._posts.append({"path": self.path, "body": body})
                    errcode = catcher._errcode
                    catcher._changed.notify_all()
                answer = json.dumps(
                    {"errcode": errcode, "errmsg": "ok" if not errcode else "fail"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="response-catcher"
        ).start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/cgi-bin/aibot/response?response_code=SIMULATED"

    def fail_with(self, errcode: int) -> None:
        with self._changed:
            self._errcode = errcode

    def posts(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._posts)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The posts once there are ``count`` of them, or the ones there are after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._posts) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return list(self._posts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ResponseCatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["BotResult", "BotSimulator", "ResponseCatcher", "json_transport"]
