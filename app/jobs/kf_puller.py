"""Pull 微信客服 messages after kf_msg_or_event callbacks: one puller per kf account.

The callback is only a doorbell (protocol reference §8.1) carrying a sync Token and the open_kfid.
:meth:`KfPuller.notify` stores it as the account's *wake* and tries to become the account's
puller; it never waits, so the callback is answered at once.

One puller per account across workers: the store lock ``kf:pull:<open_kfid>``, taken with an
expiry and renewed while pulling. A callback that finds the lock taken leaves its wake for the
holder, which looks at the wake again after every round, so a burst of callbacks causes one more
round, not one each. After releasing the lock the holder looks once more: a wake written between
its last look and the release is not lost (its writer saw the lock taken; the holder sees the
wake). A wake is deleted only after a round that reached ``has_more`` = 0, and only if no newer
wake replaced it; so the work of a crashed puller is resumed by the sweep every worker runs over
the known accounts (a wake whose lock is free).

One round (kf/sync_msg page after page, the items into their customers' lanes, the cursor,
back-off after failures) is :mod:`app.jobs.kf_sync`'s. Lanes run one customer's messages in
order and different customers at once; the puller keeps the lock until its lanes are idle, so no
other worker starts a customer's next message before the current one is answered. That holds at
the end of a session too (after ``SESSION_SECONDS``, or a failed round): the puller stops pulling
but keeps the lock, renewed, until its lanes are idle; only a lost lock or shutdown ends it sooner.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.infra import metrics
from app.infra.store import Store
from app.jobs.kf_sync import KfSync, Outcome, cursor_key, lock_name
from app.jobs.lanes import Lanes
from app.jobs.leases import LeaseKeeper
from app.jobs.ticker import RunsOnTicker, Ticker

if TYPE_CHECKING:
    from app.routing.endpoints import Endpoint

log = logging.getLogger(__name__)

ACCOUNTS_KEY = "kf:accounts"  # JSON list of the open_kfids seen, for the sweep
ACCOUNTS_LOCK = "kf:accounts:lock"
WAKE_TTL = 3 * 24 * 3600.0  # sync_msg keeps three days
SESSION_SECONDS = 600.0  # a puller hands over after this long
IDLE_WAIT = 0.2  # how often a puller waiting for its lanes looks for a new wake
MAX_STEPS = int(SESSION_SECONDS / IDLE_WAIT) + 10_000  # rounds and waits of one session

_OPEN_KFID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def wake_key(open_kfid: str) -> str:
    return f"kf:wake:{open_kfid}"


def is_doorbell(message: dict[str, Any]) -> bool:
    """A kf_msg_or_event callback (on the kf endpoint or on an app's own endpoint)."""
    return message.get("MsgType") == "event" and message.get("Event") == "kf_msg_or_event"


@dataclasses.dataclass
class _Session:
    open_kfid: str
    owner: str
    lanes: Lanes
    started: float = dataclasses.field(default_factory=time.monotonic)
    # Looked up at call time: gevent may have patched threading after this module was imported.
    lost: threading.Event = dataclasses.field(default_factory=lambda: threading.Event())
    done: threading.Event = dataclasses.field(default_factory=lambda: threading.Event())


def _accounts(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


class KfPuller(RunsOnTicker):
    """Per worker process: answers doorbells, runs pull sessions, sweeps for orphaned wakes."""

    def __init__(
        self,
        store: Store,
        loop: LeaseKeeper,
        sync: KfSync,
        *,
        lease_seconds: float = 30.0,
        max_workers: int = 32,
        sweep_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.loop = loop
        self.sync = sync
        self.lease_seconds = lease_seconds
        self.max_workers = max_workers
        self.clock = clock
        self._guard = threading.Lock()
        self._sessions: set[str] = set()  # accounts this process is pulling
        self._lanes: dict[str, Lanes] = {}
        #: Accounts seen in ACCOUNTS_KEY by this process's last sweep or write: a notify skips
        #: the store for them. Each sweep replaces it, so an account missing from the list is
        #: written again at its next doorbell.
        self._known: set[str] = set()
        # Stopping the sweep also tells running pulls to finish their page.
        self._ticker = Ticker("wecom-kf-sweep", sweep_seconds, self.sweep, sync.stopping)
        self._stop = sync.stopping

    # -- doorbells ---------------------------------------------------------------------------
    def notify(self, endpoint: Endpoint, message: dict[str, Any]) -> bool:
        """Record a kf_msg_or_event callback and start pulling unless someone already is."""
        open_kfid = str(message.get("OpenKfId") or "")
        if not _OPEN_KFID.fullmatch(open_kfid):
            log.warning("kf_msg_or_event on %s without a usable OpenKfId; ignored", endpoint.name)
            return False
        now = self.clock()
        wake = {
            "endpoint": endpoint.name,
            "token": str(message.get("Token") or ""),
            "at": now,
            "id": uuid.uuid4().hex[:12],  # a fresh value even when the token repeats
        }
        self.store.set_value(wake_key(open_kfid), json.dumps(wake), now + WAKE_TTL)
        self._remember(open_kfid)
        self._try_start(open_kfid)
        return True

    def sweep(self) -> int:
        """Start pulls for known accounts with a wake and nobody pulling; returns how many."""
        started = 0
        accounts = _accounts(self.store.get_value(ACCOUNTS_KEY, self.clock()))
        self._known = set(accounts)
        for open_kfid in accounts:
            with self._guard:
                if open_kfid in self._sessions:
                    continue
            if self.store.get_value(wake_key(open_kfid), self.clock()) is None:
                continue
            started += self._try_start(open_kfid)
        return started

    def _remember(self, open_kfid: str) -> None:
        """Add the account to ACCOUNTS_KEY: read-modify-write under a store lock, the write
        landing only while the lock is still ours (``set_value_if_locked``). A writer whose lock
        ran out mid-way (a slow store, a paused worker) tries again instead of overwriting the
        list another writer extended meanwhile."""
        if open_kfid in self._known:
            return
        owner = uuid.uuid4().hex
        for _ in range(50):
            now = self.clock()
            if self.store.acquire_lock(ACCOUNTS_LOCK, owner, now + 5.0, now):
                try:
                    accounts = _accounts(self.store.get_value(ACCOUNTS_KEY, now))
                    written = open_kfid in accounts
                    if not written:
                        accounts.append(open_kfid)
                        written = self.store.set_value_if_locked(
                            ACCOUNTS_KEY, json.dumps(accounts), ACCOUNTS_LOCK, owner, self.clock()
                        )
                    if written:
                        self._known.add(open_kfid)
                finally:
                    self.store.release_lock(ACCOUNTS_LOCK, owner)
                if written:
                    return
            time.sleep(0.01)
        log.warning("could not record kf account %s for the sweep; will retry", open_kfid)

    def _try_start(self, open_kfid: str) -> bool:
        with self._guard:
            if self._stop.is_set() or open_kfid in self._sessions:
                return False
            if self.sync.paused(open_kfid):
                return False
            now = self.clock()
            owner = f"{self.loop.owner}:{uuid.uuid4().hex[:8]}"
            if not self.store.acquire_lock(
                lock_name(open_kfid), owner, now + self.lease_seconds, now
            ):
                return False
            self._sessions.add(open_kfid)
            lanes = self._lanes.get(open_kfid)
            if lanes is None:
                lanes = self._lanes[open_kfid] = Lanes(self.max_workers, f"wecom-kf-{open_kfid}")
        session = _Session(open_kfid, owner, lanes)
        threading.Thread(
            target=self._run_session,
            args=(session,),
            name=f"wecom-kf-pull-{open_kfid}",
            daemon=True,
        ).start()
        return True

    # -- a pull session ----------------------------------------------------------------------
    def _run_session(self, session: _Session) -> None:
        open_kfid = session.open_kfid
        keeper = threading.Thread(
            target=self._keep_lock, args=(session,), name=f"wecom-kf-lock-{open_kfid}", daemon=True
        )
        keeper.start()
        try:
            self._pull_until_idle(session)
        except Exception:
            log.exception("kf pull of %s failed", open_kfid)
            self.sync.back_off(open_kfid, None)
        finally:
            session.done.set()
            keeper.join(5.0)
            self.store.release_lock(lock_name(open_kfid), session.owner)
            with self._guard:
                self._sessions.discard(open_kfid)
        # A wake that arrived after the last look, while the lock was still ours.
        if not self._stop.is_set() and self.store.get_value(wake_key(open_kfid), self.clock()):
            self._try_start(open_kfid)

    def _pull_until_idle(self, session: _Session) -> None:
        self._pull(session)
        self._drain(session)

    def _pull(self, session: _Session) -> None:
        key = wake_key(session.open_kfid)
        for _ in range(MAX_STEPS):
            if self._stop.is_set() or session.lost.is_set():
                return
            over = time.monotonic() - session.started > SESSION_SECONDS
            raw = self.store.get_value(key, self.clock())
            if raw is not None and not over:
                outcome = self.sync.run(
                    session.open_kfid,
                    raw,
                    session.lanes,
                    functools.partial(self._renew, session),
                    session.owner,
                )
                metrics.kf_round(session.open_kfid, outcome.value)
                if outcome is Outcome.DONE:
                    self.store.delete_value(key, if_value=raw)
                elif outcome is Outcome.LOST:
                    session.lost.set()  # no draining: the lock is another worker's now
                    return
                elif outcome is Outcome.FAILED:
                    return
                continue
            idle = session.lanes.wait_idle(IDLE_WAIT)
            if (idle and raw is None) or over:
                return

    def _drain(self, session: _Session) -> None:
        """Keep the lock (the keeper renews it) until the lanes are idle: released earlier,
        another worker could start a customer's next message before this one is answered."""
        if session.lanes.wait_idle(0):
            return
        log.info(
            "kf pull of %s stops pulling; it keeps the lock until its %d messages are answered",
            session.open_kfid,
            session.lanes.pending,
        )
        while not session.lanes.wait_idle(IDLE_WAIT):
            if self._stop.is_set() or session.lost.is_set():
                return

    def _keep_lock(self, session: _Session) -> None:
        """Renew the pull lock every third of the lease while the session lives, so a slow
        sync_msg call or a slow handler does not let it expire."""
        while not session.done.wait(self.lease_seconds / 3):
            if not self._renew(session):
                return

    def _renew(self, session: _Session) -> bool:
        """Extend the pull lock now; False once it is lost (then for good)."""
        if session.lost.is_set():
            return False
        now = self.clock()
        try:
            held = self.store.acquire_lock(
                lock_name(session.open_kfid), session.owner, now + self.lease_seconds, now
            )
        except Exception:
            log.exception("could not renew the pull lock of %s", session.open_kfid)
            return True  # the store may be back before the lease ends; the next try tells
        if not held:
            session.lost.set()
            log.warning("lost the pull lock of %s; another worker continues", session.open_kfid)
        return held


__all__ = ["KfPuller", "cursor_key", "is_doorbell", "lock_name", "wake_key"]
