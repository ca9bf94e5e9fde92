"""The fake's clock: an injected time source plus an offset the control API can advance, so tests
reach "10 minutes later" or "48 hours later" without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.devtools.fakewecom.protocol import ControlError


class FakeClock:
    """``now()`` is the source's time plus everything :meth:`advance` added since the last reset."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def now(self) -> float:
        return self._source() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ControlError("the clock only moves forward")
        self._offset += seconds
        return self.now()

    def reset(self) -> None:
        self._offset = 0.0
