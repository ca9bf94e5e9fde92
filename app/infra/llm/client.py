"""A streaming client for OpenAI-compatible chat completions, and per-conversation history.

``POST {WECOM_LLM_BASE_URL}/chat/completions`` with ``"stream": true``; the answer arrives as
server-sent events whose ``choices[0].delta.content`` pieces are yielded as they come, until
``data: [DONE]``. Why ``requests`` and a small SSE parser rather than the ``openai`` package:
``requests`` is already pinned and proven under gevent's monkey-patching here, the wire format
is a few lines, and the package would add about ten dependencies (httpx, pydantic, anyio, …)
without letting us bound one whole answer, which we need for WeCom's windows.

The whole answer is bounded by WECOM_LLM_TIMEOUT: the HTTP exchange runs in its own thread
(a greenlet under gevent) and hands chunks over a queue, so the consumer's wait ends at the
deadline even while the socket is silent. The API key is only ever put in the Authorization
header: it is in no log line, no exception text and no repr.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3

from app.infra.llm.sse import SseError, SseParser
from app.infra.store import Store
from app.settings.bots import LlmSettings

log = logging.getLogger(__name__)

#: How long one conversation's history is kept after its last turn.
HISTORY_SECONDS = 24 * 3600.0
#: Characters of one stored message (a long answer is kept shortened).
HISTORY_MESSAGE_CHARS = 4000


class LlmError(Exception):
    """The model could not answer (HTTP error, broken stream, unreachable)."""


class LlmTimeout(LlmError):
    """No complete answer within WECOM_LLM_TIMEOUT."""


def _error_text(body: bytes, secret: str) -> str:
    """A short reason from an error body, with the key blanked out if a server echoed it."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        document = json.loads(text)
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict):
            text = str(error.get("message") or error.get("type") or error)
        elif error:
            text = str(error)
    except (ValueError, RecursionError):
        pass
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:200]


class LlmClient:
    """One model endpoint. Thread-safe: every call uses its own HTTP session."""

    def __init__(self, settings: LlmSettings, clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.enabled:
            raise ValueError("LlmClient needs WECOM_LLM_BASE_URL")
        self.settings = settings
        self.url = settings.base_url + "/chat/completions"
        self.clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, model={self.settings.model!r})"

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the answer's text pieces; raise LlmError, or LlmTimeout at the deadline."""
        timeout = self.settings.timeout
        deadline = self.clock() + timeout
        pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(messages, pieces, stop), daemon=True, name="llm-reader"
        )
        reader.start()
        try:
            while True:
                remaining = deadline - self.clock()
                try:
                    if remaining <= 0:
                        raise queue.Empty
                    kind, value = pieces.get(timeout=remaining)
                except queue.Empty:
                    raise LlmTimeout(f"no complete answer within {timeout:g} s") from None
                if kind == "text":
                    yield value
                elif kind == "done":
                    return
                else:
                    raise value
        finally:
            stop.set()

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The whole answer as one string (still streamed, so the deadline holds)."""
        return "".join(self.stream(messages))

    # -- the HTTP exchange, in the reader thread -------------------------------------------------
    def _read(
        self, messages: list[dict[str, str]], pieces: queue.Queue, stop: threading.Event
    ) -> None:
        try:
            for piece in self._exchange(messages, stop):
                pieces.put(("text", piece))
            pieces.put(("done", None))
        except LlmError as exc:
            pieces.put(("error", exc))
        except Exception as exc:  # never leave the consumer waiting for the deadline
            pieces.put(("error", LlmError(f"unexpected {type(exc).__name__}")))

    def _exchange(self, messages: list[dict[str, str]], stop: threading.Event) -> Iterator[str]:
        settings = self.settings
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        body = {"model": settings.model, "messages": messages, "stream": True}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        with requests.Session() as session:
            try:
                response = session.post(
                    self.url,
                    data=data,
                    headers=headers,
                    stream=True,
                    timeout=(min(10.0, settings.timeout), settings.timeout),
                )
            except requests.Timeout:
                raise LlmTimeout("the model did not answer in time") from None
            except requests.RequestException as exc:
                raise LlmError(f"cannot reach the model: {type(exc).__name__}") from None
            with response:
                if response.status_code != 200:
                    reason = _error_text(
                        response.raw.read(4096, decode_content=True), settings.api_key
                    )
                    raise LlmError(f"the model answered HTTP {response.status_code}: {reason}")
                content_type = response.headers.get("Content-Type", "")
                if "text/event-stream" not in content_type:
                    yield self._whole_answer(response)
                    return
                yield from self._events(response, stop)

    @staticmethod
    def _whole_answer(response: requests.Response) -> str:
        """A server that ignored ``stream: true`` and sent one JSON answer."""
        try:
            document = response.json()
            return str(document["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise LlmError(
                "the model's answer is neither an event stream nor a chat completion"
            ) from None

    def _events(self, response: requests.Response, stop: threading.Event) -> Iterator[str]:
        parser = SseParser()
        finished = False
        try:
            while True:
                # read1: whatever has arrived, chunked or not (iter_content would wait for a
                # whole body that is delimited by the connection's close).
                chunk = response.raw.read1(65536)
                if not chunk or stop.is_set():
                    break
                for event in parser.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        return
                    piece, finished_now = self._piece(event.data)
                    finished = finished or finished_now
                    if piece:
                        yield piece
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise LlmError(f"the answer broke off: {type(exc).__name__}") from None
        except SseError as exc:
            raise LlmError(str(exc)) from None
        if stop.is_set():
            return
        if not finished:
            raise LlmError("the answer ended before the model finished it")

    @staticmethod
    def _piece(data: str) -> tuple[str, bool]:
        """(text, finished) of one chunk: ``choices[0].delta.content`` and its finish_reason."""
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise LlmError("the model sent an event that is not JSON") from None
        if not isinstance(chunk, dict):
            raise LlmError("the model sent an event that is not a JSON object")
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise LlmError(f"the model reported an error: {str(message)[:200]}")
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return "", False  # e.g. the closing usage chunk
        choice = choices[0]
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        return (text if isinstance(text, str) else ""), bool(choice.get("finish_reason"))


class ChatHistory:
    """The last ``turns`` questions and answers of each conversation, kept in the store so every
    worker sees them. Two messages of one user answered at the same moment may each miss the
    other's turn: history is context, not a record."""

    def __init__(
        self, store: Callable[[], Store], turns: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.turns = turns
        self.clock = clock

    @staticmethod
    def key(conversation: str) -> str:
        return f"llm:history:{conversation}"

    def load(self, conversation: str) -> list[dict[str, str]]:
        if self.turns <= 0:
            return []
        raw = self.store().get_value(self.key(conversation), self.clock())
        try:
            messages = json.loads(raw) if raw else []
        except ValueError:
            return []
        if not isinstance(messages, list):
            return []
        return [
            {"role": str(m["role"]), "content": str(m["content"])}
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
        ][-2 * self.turns :]

    def record(self, conversation: str, question: str, answer: str) -> None:
        if self.turns <= 0:
            return
        messages = self.load(conversation)
        messages.append({"role": "user", "content": question[:HISTORY_MESSAGE_CHARS]})
        messages.append({"role": "assistant", "content": answer[:HISTORY_MESSAGE_CHARS]})
        now = self.clock()
        self.store().set_value(
            self.key(conversation),
            json.dumps(messages[-2 * self.turns :], ensure_ascii=False),
            expires_at=now + HISTORY_SECONDS,
        )


__all__ = ["HISTORY_SECONDS", "ChatHistory", "LlmClient", "LlmError", "LlmTimeout"]
