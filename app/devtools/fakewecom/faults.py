"""Faults a test queues for the next requests to an endpoint, consumed in order."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from app.devtools.fakewecom.protocol import ControlError

ENDPOINTS: Final = (
    "gettoken",
    "message/send",
    "kf/sync_msg",
    "kf/send_msg",
    "kf/send_msg_on_event",
    "kf/account/list",
)
ANY_ENDPOINT: Final = "*"
FAULT_KINDS: Final = frozenset(
    {
        "errcode",
        "http",
        "delay",
        "delay_after",
        "drop",
        "drop_after",
        "token_expired",
        "empty_page",
    }
)


@dataclasses.dataclass
class Fault:
    """One injected fault, consumed by the next request to its endpoint."""

    kind: str
    errcode: int | None = None
    status: int = 500
    seconds: float = 0.0

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ControlError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        errcode = spec.get("errcode")
        if kind == "errcode" and not isinstance(errcode, int):
            raise ControlError("an errcode fault needs an integer 'errcode'")
        seconds = float(spec.get("seconds", 0.0))
        if kind in ("delay", "delay_after") and not 0 <= seconds <= 600:
            raise ControlError(f"a {kind} fault needs 0 <= seconds <= 600")
        return cls(kind=kind, errcode=errcode, status=int(spec.get("status", 500)), seconds=seconds)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class FaultQueues:
    """One queue per endpoint plus the global ``"*"`` queue. Not locked: the state's lock is."""

    def __init__(self) -> None:
        self._queues: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )

    def add(
        self, endpoint: str, faults: Iterable[Fault | Mapping[str, Any]], count: int = 1
    ) -> dict[str, int]:
        if endpoint != ANY_ENDPOINT and endpoint not in ENDPOINTS:
            raise ControlError(f"unknown endpoint {endpoint!r}; one of {[*ENDPOINTS, '*']}")
        if not 1 <= count <= 10000:
            raise ControlError("count must be between 1 and 10000")
        parsed = [f if isinstance(f, Fault) else Fault.from_json(f) for f in faults]
        for _ in range(count):
            self._queues[endpoint].extend(parsed)
        return self.pending()

    def clear(self) -> None:
        self._queues.clear()

    def pending(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._queues.items() if v}

    def take(self, endpoint: str) -> Fault | None:
        """The next fault for ``endpoint``: its own queue first, then the global one."""
        for key in (endpoint, ANY_ENDPOINT):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        return None
