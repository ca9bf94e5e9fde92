"""A fake OpenAI-compatible model on 127.0.0.1: ``POST …/chat/completions`` answers with
server-sent events, so the service shows an "LLM" answer on a machine with no network.

    python -m app.devtools.fakellm --port 9998        # prints http://127.0.0.1:9998/v1
    WECOM_LLM_BASE_URL=http://127.0.0.1:9998/v1 WECOM_LLM_MODEL=fake scripts/run.sh

The answer to a question ``q`` is ``模拟回答：q``, sent a few characters per event. Markers in
the last user message steer it, for tests: ``#fail`` (HTTP 500), ``#slow`` (a long answer, one
event every ``slow_delay`` seconds), ``#stall`` (one event, then silence), ``#long`` (an answer
of more than 20480 bytes). ``GET /_fake/requests`` lists the requests received (the
Authorization header reduced to whether it matched), ``POST /_fake/reset`` forgets them.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER_PREFIX = "模拟回答："


def answer_for(question: str) -> str:
    if "#long" in question:
        return ANSWER_PREFIX + "长" * 8000  # 24 000 bytes
    if "#slow" in question:
        return ANSWER_PREFIX + "".join(f"第{n}段。" for n in range(1, 200))
    return ANSWER_PREFIX + question


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeLlm) -> None:
        super().__init__(("127.0.0.1", fake.requested_port), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, document: Any) -> None:
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/_fake/requests"):
            self._json(200, {"requests": self.server.fake.requests()})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.startswith("/_fake/reset"):
            fake.reset()
            self._json(200, {"ok": True})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(raw)
            messages = body["messages"]
            question = next(
                (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            self._json(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
            return
        authorized = (
            not fake.api_key or self.headers.get("Authorization") == f"Bearer {fake.api_key}"
        )
        fake.record({"path": self.path, "authorized": authorized, "body": body})
        if not authorized:
            self._json(
                401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
            )
            return
        if "#fail" in question:
            self._json(500, {"error": {"message": "the fake model failed", "type": "server_error"}})
            return
        answer = answer_for(question)
        if not body.get("stream"):
            self._json(200, _completion(answer, body.get("model", "")))
            return
        self._stream(answer, question, body.get("model", ""))

    def _stream(self, answer: str, question: str, model: str) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if fake.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:  # the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        delay = fake.slow_delay if "#slow" in question else fake.chunk_delay
        size = fake.chunk_chars if "#long" not in question else 2000
        pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
        try:
            self._write(b": fake model\n\n")
            for index, piece in enumerate(pieces):
                self._event(
                    {
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        ],
                        "model": model,
                    }
                )
                if "#stall" in question and index == 0:
                    fake.closing.wait(fake.stall_seconds)
                    self.close_connection = True
                    return
                if fake.closing.wait(delay):
                    return
            self._event(
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "model": model}
            )
            self._write(b"data: [DONE]\n\n")
            if fake.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away

    def _event(self, document: dict[str, Any]) -> None:
        data = json.dumps({"object": "chat.completion.chunk", **document}, ensure_ascii=False)
        self._write(f"data: {data}\n\n".encode())

    def _write(self, data: bytes) -> None:
        if self.server.fake.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.wfile.write(data)
        self.wfile.flush()


def _completion(answer: str, model: str) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
    }


class FakeLlm:
    """The fake model in a background thread. ``base_url`` is what WECOM_LLM_BASE_URL takes."""

    def __init__(
        self,
        *,
        port: int = 0,
        api_key: str = "",
        chunk_chars: int = 3,
        chunk_delay: float = 0.01,
        slow_delay: float = 0.2,
        stall_seconds: float = 30.0,
        chunked: bool = True,
    ) -> None:
        self.requested_port = port
        self.api_key = api_key
        self.chunk_chars = chunk_chars
        self.chunk_delay = chunk_delay
        self.slow_delay = slow_delay
        self.stall_seconds = stall_seconds
        self.chunked = chunked
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append({**entry, "time": time.time()})

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> FakeLlm:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="fakellm"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeLlm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--api-key", default="", help="require this Bearer key")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between events")
    args = parser.parse_args(argv)
    fake = FakeLlm(port=args.port, api_key=args.api_key, chunk_delay=args.delay).start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
