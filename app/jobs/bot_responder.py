"""Answer every intelligent-bot callback: messages start streams, refreshes read them, events
get their passive reply within the budget, repeats get the first answer again.

* A user message is claimed by its ``msgid`` (a repeat never runs the handler again; it gets the
  same stream or reply). The handler runs in its own thread (a greenlet under gevent); the
  callback waits at most ``first_wait`` for something to show, then answers with the stream id
  and the text so far, or with the handler's non-stream reply if it came by then.
* A refresh is answered from the store by any worker: everything so far, ``finish`` once the
  generator ended (see :mod:`app.jobs.streams`).
* Events (``enter_chat``, ``template_card_event``, ``feedback_event`` …) wait for the handler at
  most until the reply deadline. A card event's text or card answer goes through
  ``response_url``, even when it comes late.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.infra.api.response_url import ResponseUrlClient, ResponseUrlError
from app.jobs.bot_streams import LiveStream, StreamTicker
from app.jobs.streams import StreamState, StreamStore, new_stream_id
from app.routing.bot_router import BotReplyTypeError, BotRouter
from app.routing.time_limit import dispatch_with_time_limit
from app.wecom.aibot import (
    Markdown,
    StreamImage,
    StreamWithCardReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
    callback_kind,
    with_card,
)

log = logging.getLogger(__name__)

#: response_url lives one hour after the message (doc 101138).
RESPONSE_URL_SECONDS = 3600.0
REPEAT_POLL_SECONDS = 0.05


class BotResponder:
    def __init__(
        self,
        routers: dict[str, BotRouter],
        streams: dict[str, StreamStore],
        response_url: ResponseUrlClient,
        *,
        deadline: float,
        handler_timeout: float,
        lease: float,
        window: float,
        fallback: str,
        first_wait: float = 0.3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.routers = routers
        self.streams = streams
        self.response_url = response_url
        self.deadline = deadline
        self.handler_timeout = handler_timeout
        self.lease = lease
        self.fallback = fallback
        self.first_wait = first_wait
        self.clock = clock
        self.ticker = StreamTicker(lease, window, clock=clock)

    def stop(self) -> None:
        self.ticker.stop()

    def respond(
        self, bot: str, message: dict[str, Any], received_at: float
    ) -> dict[str, Any] | None:
        """The plaintext reply to one callback (None: an empty answer). ``received_at`` is the
        request's ``time.monotonic()``."""
        kind = callback_kind(message)
        streams = self.streams[bot]
        if kind == "refresh":
            return streams.refresh_frame(message["stream"]["id"])
        msgid = str(message.get("msgid") or "")
        if msgid and not streams.claim(msgid):
            log.info("repeated callback of msgid=%s on bot %s", msgid, bot)
            return self._repeat(streams, msgid, received_at)
        if kind == "message":
            return self._start_stream(bot, message)  # records its own outcome
        reply = self._event(bot, message, kind, received_at)
        if msgid:
            streams.set_record(msgid, {"reply": reply})
        return reply

    def _remaining(self, received_at: float) -> float:
        return max(self.deadline - (time.monotonic() - received_at), 0.0)

    def _repeat(
        self, streams: StreamStore, msgid: str, received_at: float
    ) -> dict[str, Any] | None:
        while True:
            record = streams.get_record(msgid)
            if record is not None:
                if "stream" in record:
                    return streams.refresh_frame(str(record["stream"]))
                return record.get("reply")
            wait = min(self._remaining(received_at), REPEAT_POLL_SECONDS)
            if wait <= 0:
                return None
            time.sleep(wait)

    # -- user messages: streams --------------------------------------------------------------------
    def _start_stream(self, bot: str, message: dict[str, Any]) -> dict[str, Any] | None:
        msgid = str(message.get("msgid") or "-")
        state = StreamState(new_stream_id(), received_at=self.clock())
        live = LiveStream(
            state, self.streams[bot], str(message.get("response_url") or ""), f"msgid={msgid}"
        )
        threading.Thread(
            target=self._run, args=(bot, message, live), daemon=True, name=f"wecom-bot-{msgid}"
        ).start()
        live.first.wait(self.first_wait)
        streams = self.streams[bot]
        with live.lock:
            passive: dict[str, Any] | None = None
            if live.kind == "card":
                passive = live.passive
            elif not (live.kind == "none" or (live.failed and live.kind is None)):
                live.committed = True
            feedback_id = live.feedback_id
        if not live.committed:
            if msgid != "-":
                streams.set_record(msgid, {"reply": passive})
            return passive
        self.ticker.add(live)
        live.flush(self.lease, self.clock())
        if msgid != "-":
            streams.set_record(msgid, {"stream": state.id})
        with live.lock:
            frame = live.state.frame(feedback_id)
            card = live.state.card
        if card is not None and streams.take_card(state.id):
            frame = with_card(frame, card)
        return frame

    def _run(self, bot: str, message: dict[str, Any], live: LiveStream) -> None:
        images: list[dict[str, Any]] = []
        try:
            dispatch_with_time_limit(
                lambda m: self._produce(self.routers[bot], m, live, images),
                message,
                self.handler_timeout,
            )
        except BotReplyTypeError as exc:
            log.error("bot %s, %s: %s", bot, live.label, exc)
            with live.lock:
                live.failed = True
        except Exception:
            log.exception("bot handler failed on bot %s for %s", bot, live.label)
            with live.lock:
                live.failed = True
        with live.lock:
            stream = live.committed or live.kind == "stream"
        if live.failed and stream and not live.has_text():
            live.append(self.fallback)  # a stream bubble is open: do not leave it empty
        rest = live.finish(images)
        live.first.set()
        try:
            if stream:
                live.flush(self.lease, self.clock())
        except Exception as exc:
            log.warning("could not save the end of the stream of %s: %s", live.label, exc)
        finally:
            self.ticker.remove(live)
        if rest.strip():
            self._send_active(
                live.response_url, Markdown(rest).payload(), live.state.received_at, live.label
            )

    def _produce(
        self,
        router: BotRouter,
        message: dict[str, Any],
        live: LiveStream,
        images: list[dict[str, Any]],
    ) -> None:
        value = router.dispatch(message)
        if value is None:
            live.set_kind("none")
            return
        if isinstance(value, TemplateCardReply):
            live.set_kind("card", passive=value.payload())
            return
        card = value.card_json() if isinstance(value, StreamWithCardReply) else None
        live.set_kind("stream", feedback_id=value.feedback_id, card=card)
        images.extend(image.item() for image in value.images)
        if isinstance(value.content, str):
            live.append(value.content)
            return
        for chunk in value.content:
            if isinstance(chunk, StreamImage):
                images.append(chunk.item())
            elif isinstance(chunk, str):
                if chunk:
                    live.append(chunk)
            else:
                raise BotReplyTypeError(
                    f"a stream yielded {type(chunk).__name__}; it may yield str or StreamImage"
                )

    # -- events -----------------------------------------------------------------------------------
    def _event(
        self, bot: str, message: dict[str, Any], kind: str, received_at: float
    ) -> dict[str, Any] | None:
        label = f"msgid={message.get('msgid', '-')}"
        done = threading.Event()
        box: dict[str, Any] = {}
        lock = threading.Lock()

        def run() -> None:
            try:
                value = dispatch_with_time_limit(
                    self.routers[bot].dispatch, message, self.handler_timeout
                )
            except BotReplyTypeError as exc:
                log.error("bot %s, %s event %s: %s", bot, kind, label, exc)
                value = None
            except Exception:
                log.exception("bot handler failed on bot %s for %s event %s", bot, kind, label)
                value = None
            with lock:
                box["value"] = value
                late = box.get("late", False)
            done.set()
            if late:
                self._late_event(message, kind, value, label)

        threading.Thread(target=run, daemon=True, name=f"wecom-bot-event-{label}").start()
        done.wait(self._remaining(received_at))
        with lock:
            if "value" not in box:
                box["late"] = True
                log.info(
                    "bot handler for %s event %s missed the %.1f s budget",
                    kind,
                    label,
                    self.deadline,
                )
                return None
            value = box["value"]
        if isinstance(value, WelcomeText | UpdateCardReply) or (
            isinstance(value, TemplateCardReply) and kind == "enter_chat"
        ):
            return value.payload()
        if value is not None:  # a card event's Markdown or card: through response_url
            self._spawn_active(message, value, label)
        return None

    def _late_event(self, message: dict[str, Any], kind: str, value: Any, label: str) -> None:
        if isinstance(value, Markdown | TemplateCardReply) and kind == "template_card_event":
            self._spawn_active(message, value, label)
        elif value is not None:
            log.warning("the %s answer to %s came too late for its callback; dropped", kind, label)

    def _spawn_active(
        self, message: dict[str, Any], value: Markdown | TemplateCardReply, label: str
    ) -> None:
        url = str(message.get("response_url") or "")
        threading.Thread(
            target=self._send_active,
            args=(url, value.payload(), self.clock(), label),
            daemon=True,
            name="wecom-bot-active-reply",
        ).start()

    def _send_active(self, url: str, body: dict[str, Any], received_at: float, label: str) -> None:
        if not url:
            log.warning("no response_url for %s: its active reply is dropped", label)
            return
        if self.clock() > received_at + RESPONSE_URL_SECONDS:
            log.warning("the response_url of %s expired: its active reply is dropped", label)
            return
        try:
            self.response_url.post(url, body)
        except ResponseUrlError as exc:
            log.warning("active reply for %s failed: %s", label, exc)
        else:
            log.info("active reply for %s sent through response_url", label)


__all__ = ["BotResponder"]
