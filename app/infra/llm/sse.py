"""An incremental parser of server-sent events (the WHATWG ``text/event-stream`` format).

Bytes go in as they arrive (:meth:`SseParser.feed`), complete events come out. Lines end with
CRLF, LF or CR (a CR at the end of one chunk may meet its LF in the next); ``data`` lines of one
event are joined with newlines; comments (``:``) are skipped; an unfinished event at the end of
the stream is dropped, as the standard says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Longest line accepted: a server that never ends a line must not fill the memory.
MAX_LINE = 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")


class SseError(ValueError):
    """The stream is not an event stream we can read (a line too long)."""


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SseParser:
    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = b""
        self._after_cr = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by ``chunk``."""
        if self._after_cr and chunk:
            if chunk.startswith(b"\n"):  # the second half of a CRLF split between chunks
                chunk = chunk[1:]
            self._after_cr = False
        self._buffer += chunk
        events: list[SseEvent] = []
        start = 0
        for match in _LINE_END.finditer(self._buffer):
            if match.group() == b"\r" and match.end() == len(self._buffer):
                self._after_cr = True
            event = self._line(self._buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = self._buffer[start:]
        if len(self._buffer) > self.max_line:
            raise SseError(f"an event-stream line is longer than {self.max_line} bytes")
        return events

    def _line(self, raw: bytes) -> SseEvent | None:
        line = raw.decode("utf-8", "replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # "retry" and unknown fields are ignored

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SseEvent("\n".join(self._data), self._event or "message", self._id)
        self._data, self._event = [], ""
        return event


__all__ = ["MAX_LINE", "SseError", "SseEvent", "SseParser"]
