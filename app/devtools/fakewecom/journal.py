"""What the fake saw and accepted: the request log and the list of sent messages.

Tests and the simulator read both. The state's lock guards them; :meth:`Journal.wait_sent` waits
on a condition of that lock, so a control call can block until the service sends something.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.tokens import secret_tag

MAX_LOG: Final = 20000  # request-log entries kept (oldest dropped)
MAX_WAIT: Final = 120.0  # longest wait_sent a control call may ask for, in seconds


class Journal:
    """The request log and the sent messages. Call every method with ``lock`` held."""

    def __init__(self, clock: FakeClock, lock: threading.RLock) -> None:
        self._clock = clock
        self._changed = threading.Condition(lock)
        self.waiting = 0  # calls blocked in wait_sent (a test can wait for its long poll)
        self._clear()

    def reset(self) -> None:
        self._clear()
        self._changed.notify_all()

    def _clear(self) -> None:
        self._sent: list[dict[str, Any]] = []
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_LOG)
        self.by_endpoint: collections.Counter[str] = collections.Counter()
        self._request_seq = 0

    # -- requests -----------------------------------------------------------------------------
    def begin(
        self, method: str, endpoint: str, query: Mapping[str, str], content_type: str | None
    ) -> dict[str, Any]:
        """Log a request as it arrives (the secret shown as a hash) and return its entry."""
        self._request_seq += 1
        self.by_endpoint[endpoint] += 1
        shown = dict(query)
        if "corpsecret" in shown:
            shown["corpsecret"] = secret_tag(shown["corpsecret"])
        entry: dict[str, Any] = {
            "seq": self._request_seq,
            "time": self._clock.now(),
            "wall_time": time.time(),
            "method": method,
            "endpoint": endpoint,
            "query": shown,
            "content_type": content_type,
            "body": None,
            "fault": None,
            "status": None,
            "errcode": None,
        }
        self._log.append(entry)
        return entry

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(e) for e in self._log if endpoint is None or e["endpoint"] == endpoint
        ]

    # -- sent messages ------------------------------------------------------------------------
    def record(self, api: str, body: dict[str, Any], msgid: str, **extra: Any) -> None:
        """An accepted message (message/send, kf/send_msg, kf/send_msg_on_event)."""
        self._sent.append(
            {
                "api": api,
                "msgid": msgid,
                "time": self._clock.now(),
                "wall_time": time.time(),
                "msgtype": body.get("msgtype"),
                "body": copy.deepcopy(body),
                **extra,
            }
        )
        self._changed.notify_all()

    def sent(self, api: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Accepted messages in order, from position ``after`` on, optionally of one API."""
        return [
            copy.deepcopy(s) for s in self._sent[max(0, after) :] if api is None or s["api"] == api
        ]

    @property
    def sent_count(self) -> int:
        return len(self._sent)

    def wait_sent(self, after: int, timeout: float, cancelled: Callable[[], bool]) -> int:
        """Block until more than ``after`` messages were sent, ``timeout`` passes or
        ``cancelled()`` turns true (checked on every wake-up); return the number sent."""
        deadline = time.monotonic() + min(max(0.0, timeout), MAX_WAIT)
        self.waiting += 1
        try:
            while len(self._sent) <= after and not cancelled():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
        finally:
            self.waiting -= 1
        return len(self._sent)

    def wake_all(self) -> None:
        """Wake every :meth:`wait_sent` so it checks ``cancelled`` (the server is stopping)."""
        self._changed.notify_all()
