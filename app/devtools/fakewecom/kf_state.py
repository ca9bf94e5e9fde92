"""What the fake keeps about 微信客服: accounts, the message log that kf/sync_msg pages through,
sessions (the 48-hour window and the five answers per customer message) and event codes.

``kf_inbox`` fills it (customers write), ``kf_send`` reads it (the service answers).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Final

KF_WINDOW: Final = 48 * 3600.0  # answers are allowed this long after the customer's message
KF_ALLOWANCE: Final = 5  # answers allowed per customer message
KF_RETENTION: Final = 3 * 86400.0  # sync_msg only returns the last 3 days
CALLBACK_TOKEN_TTL: Final = 600.0  # the kf_msg_or_event Token is valid 10 minutes
WELCOME_CODE_TTL: Final = 20.0
LONG_CODE_TTL: Final = 48 * 3600.0


@dataclasses.dataclass
class KfItem:
    """One entry of the kf message log (a message or an event, as sync_msg returns it)."""

    seq: int
    open_kfid: str
    send_time: float
    data: dict[str, Any]


@dataclasses.dataclass
class Session:
    last_customer_at: float | None = None
    allowance: int = 0
    state: int = 0  # service_state: 0 new, 1 bot, 2 queued, 3 servicer, 4 ended


@dataclasses.dataclass
class EventCode:
    """A welcome_code or msg_code, good for one kf/send_msg_on_event until it expires."""

    code: str
    open_kfid: str
    external_userid: str
    kind: str
    expires_at: float
    used: bool = False


class KfState:
    """The 微信客服 data; accounts survive :meth:`reset`, everything else does not."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        self.log: list[KfItem] = []
        self.seq = 0
        self.callback_tokens: dict[str, tuple[str, float]] = {}  # token -> (open_kfid, expiry)
        self.sessions: dict[tuple[str, str], Session] = {}
        self.event_codes: dict[str, EventCode] = {}
        self.msgids: dict[str, set[str]] = collections.defaultdict(set)  # per open_kfid

    def session(self, open_kfid: str, external_userid: str) -> Session:
        return self.sessions.setdefault((open_kfid, external_userid), Session())
