"""A stream while its generator runs, in the worker that runs it, and the ticker that saves it.

:class:`LiveStream` collects the text a handler produces. The frames never show more than 20480
bytes: when the text grows past that, or when WeCom's 6-minute window is about to close, the
stream is finished early with a note, and the text not shown is kept for ``response_url``.
:class:`StreamTicker` (one thread per worker) saves every changed stream a few times a second
and renews the ``alive_until`` of running ones, so refreshes on any worker see the same text and
a dead worker's streams are recognised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.jobs.streams import NOTE_CONTINUED, StreamState, StreamStore
from app.wecom.aibot import CONTENT_LIMIT
from app.wecom.aibot.replies import clean_text
from app.wecom.replies import truncate_utf8

log = logging.getLogger(__name__)


class LiveStream:
    """One running stream. Every field is guarded by ``lock``."""

    def __init__(self, state: StreamState, streams: StreamStore, response_url: str, label: str):
        self.state = state
        self.streams = streams
        self.response_url = response_url
        self.label = label  # "msgid=…" for log lines (never the content)
        self.lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.first = threading.Event()  # set once there is something to answer the message with
        self.kind: str | None = None  # "stream", "card" (a passive template card) or "none"
        self.passive: dict[str, Any] | None = None
        self.feedback_id: str | None = None
        self.committed = False  # the message was answered with a stream frame
        self.failed = False
        self._pieces: list[str] = []
        self._bytes = 0
        self._shown: int | None = None  # finished early: characters of the text shown
        self.dirty = True
        self.next_beat = 0.0

    # -- what the handler produced ---------------------------------------------------------------
    def set_kind(
        self,
        kind: str,
        passive: dict[str, Any] | None = None,
        feedback_id: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> None:
        with self.lock:
            if self.committed and kind != "stream":
                # Too late for a passive answer: the message is a stream already.
                if kind == "card" and passive is not None:
                    self.state.card = passive["template_card"]
                kind = "stream"
            self.kind, self.passive, self.feedback_id = kind, passive, feedback_id
            if card is not None:
                self.state.card = card
            self.dirty = True
        if kind != "stream":
            self.first.set()

    def append(self, text: str) -> None:
        text = clean_text(text)
        with self.lock:
            self._pieces.append(text)
            self._bytes += len(text.encode("utf-8"))
            if not self.state.finished:
                if self._bytes > CONTENT_LIMIT:
                    self._finish_early(NOTE_CONTINUED)
                else:
                    self.state.content += text
                self.dirty = True
        self.first.set()

    def has_text(self) -> bool:
        with self.lock:
            return self._bytes > 0

    def _finish_early(self, note: str) -> None:
        full = "".join(self._pieces)
        shown = truncate_utf8(full, CONTENT_LIMIT - len(note.encode("utf-8")))
        self._shown = len(shown)
        self.state.content = shown + note
        self.state.finished = True
        self.dirty = True

    def finish_early(self, note: str) -> bool:
        with self.lock:
            if self.state.finished:
                return False
            self._finish_early(note)
            return True

    def finish(self, images: list[dict[str, Any]]) -> str:
        """The generator ended: the final frame gets everything (and the images). Returns the
        text the frames could not show, for ``response_url``."""
        with self.lock:
            full = "".join(self._pieces)
            self.dirty = True
            if self.state.finished:
                return full[self._shown :] if self._shown is not None else ""
            self.state.content = full
            self.state.images = images
            self.state.finished = True
            return ""

    # -- persistence ------------------------------------------------------------------------------
    def flush(self, lease: float, now: float) -> None:
        """Save a snapshot; saves happen in the order their snapshots were taken."""
        with self._flush_lock:
            with self.lock:
                if not self.state.finished:
                    self.state.alive_until = now + lease
                snapshot = StreamState(**{**vars(self.state), "images": list(self.state.images)})
                self.dirty = False
                self.next_beat = now + lease / 3
            self.streams.save(snapshot)


class StreamTicker:
    """Saves changed streams every ``interval`` seconds, renews running ones, and finishes those
    that reach ``window`` seconds after the user's message (WeCom stops refreshing at 6 min)."""

    def __init__(
        self,
        lease: float,
        window: float,
        interval: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lease = lease
        self.window = window
        self.interval = interval
        self.clock = clock
        self._live: dict[str, LiveStream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, live: LiveStream) -> None:
        with self._lock:
            self._live[live.state.id] = live
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, daemon=True, name="wecom-bot-streams"
                )
                self._thread.start()

    def remove(self, live: LiveStream) -> None:
        with self._lock:
            self._live.pop(live.state.id, None)

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                streams = list(self._live.values())
                if not streams:  # idle: end; the next stream starts a new thread
                    self._thread = None
                    return
            for live in streams:
                try:
                    self.tick(live)
                except Exception as exc:  # the store hiccupped: try again next tick
                    log.warning("could not save stream of %s: %s", live.label, exc)

    def tick(self, live: LiveStream) -> None:
        now = self.clock()
        if now >= live.state.received_at + self.window and live.finish_early(NOTE_CONTINUED):
            log.info(
                "stream of %s reached the %.0f s window; the rest goes later",
                live.label,
                self.window,
            )
        if live.dirty or now >= live.next_beat:
            live.flush(self.lease, now)


__all__ = ["LiveStream", "StreamTicker"]
