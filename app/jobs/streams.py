"""Stream state of the intelligent bot, kept in the store so any worker can answer a refresh.

Keys (all with an expiry): ``aibot:<bot>:stream:<id>`` holds a :class:`StreamState` as JSON;
``aibot:<bot>:msg:<msgid>`` records how a message was answered (its stream id, or the reply
itself) so a repeated callback gets the same answer; the lock ``aibot:<bot>:claim:<msgid>``
decides which callback of a message runs the handler, and ``aibot:<bot>:card:<id>`` that a
stream's card goes out once.

The owner of a running stream renews ``alive_until`` while it works. A refresh that finds a
stream unfinished and not renewed (its worker died, or the service restarted) finishes it with
what was saved and a short note; an unknown stream is finished with a note, so WeCom stops asking.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.infra.store import Store
from app.wecom.aibot import CONTENT_LIMIT, stream_payload
from app.wecom.replies import truncate_utf8

#: How long a message's record and a stream's state are kept (response_url lives 1 h).
KEEP_SECONDS = 2 * 3600.0

NOTE_CONTINUED = "\n\n（内容较长，其余部分稍后单独发送）"
NOTE_INTERRUPTED = "\n\n（回答中断了，请重新提问）"
NOTE_UNKNOWN = "（这条回答已失效，请重新提问）"


def new_stream_id() -> str:
    return uuid.uuid4().hex


def with_note(content: str, note: str) -> str:
    """``content`` shortened so that it and ``note`` fit a stream frame."""
    room = CONTENT_LIMIT - len(note.encode("utf-8"))
    return truncate_utf8(content, room) + note


@dataclasses.dataclass
class StreamState:
    id: str
    content: str = ""  # what the frames show: everything so far, at most 20480 bytes
    finished: bool = False  # the frame says finish: true; the content changes no more
    images: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    card: dict[str, Any] | None = None  # stream_with_template_card's card, sent once
    owner: str = ""
    alive_until: float = 0.0  # the owner renews this while the stream runs
    received_at: float = 0.0  # wall clock of the user's message

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> StreamState | None:
        try:
            fields = json.loads(raw)
            return cls(**fields)
        except (ValueError, TypeError):
            return None

    def frame(self, feedback_id: str | None = None) -> dict[str, Any]:
        images = self.images if self.finished else ()
        return stream_payload(self.id, self.content, self.finished, images, feedback_id)


class StreamStore:
    """The store operations of one bot's streams and message records."""

    def __init__(
        self, store: Callable[[], Store], bot: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.bot = bot
        self.clock = clock

    def _key(self, kind: str, name: str) -> str:
        return f"aibot:{self.bot}:{kind}:{name}"

    # -- messages ---------------------------------------------------------------------------------
    def claim(self, msgid: str) -> bool:
        """True for the first callback of ``msgid`` (it runs the handler), False for repeats."""
        now = self.clock()
        owner = uuid.uuid4().hex
        return self._store().acquire_lock(self._key("claim", msgid), owner, now + KEEP_SECONDS, now)

    def set_record(self, msgid: str, record: dict[str, Any]) -> None:
        self._store().set_value(
            self._key("msg", msgid),
            json.dumps(record, ensure_ascii=False),
            expires_at=self.clock() + KEEP_SECONDS,
        )

    def get_record(self, msgid: str) -> dict[str, Any] | None:
        raw = self._store().get_value(self._key("msg", msgid), self.clock())
        if not raw:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    # -- streams ----------------------------------------------------------------------------------
    def save(self, state: StreamState) -> None:
        expires = max(state.received_at, self.clock()) + KEEP_SECONDS
        self._store().set_value(self._key("stream", state.id), state.to_json(), expires_at=expires)

    def load(self, stream_id: str) -> StreamState | None:
        raw = self._store().get_value(self._key("stream", stream_id), self.clock())
        return StreamState.from_json(raw) if raw else None

    def take_card(self, stream_id: str) -> bool:
        """True once per stream: the caller sends the card."""
        now = self.clock()
        return self._store().acquire_lock(
            self._key("card", stream_id), uuid.uuid4().hex, now + KEEP_SECONDS, now
        )

    def refresh_frame(self, stream_id: str) -> dict[str, Any]:
        """The answer to a refresh of ``stream_id``, from whatever worker."""
        state = self.load(stream_id)
        if state is None:
            return StreamState(stream_id, NOTE_UNKNOWN, finished=True).frame()
        if not state.finished and state.alive_until < self.clock():
            # Nobody renews it: its worker is gone. Finish with what was saved.
            state.content = with_note(state.content, NOTE_INTERRUPTED)
            state.finished = True
            self.save(state)
        frame = state.frame()
        if state.card is not None and self.take_card(stream_id):
            frame = {
                "msgtype": "stream_with_template_card",
                "stream": frame["stream"],
                "template_card": state.card,
            }
        return frame


__all__ = [
    "KEEP_SECONDS",
    "NOTE_CONTINUED",
    "NOTE_INTERRUPTED",
    "NOTE_UNKNOWN",
    "StreamState",
    "StreamStore",
    "new_stream_id",
    "with_note",
]
