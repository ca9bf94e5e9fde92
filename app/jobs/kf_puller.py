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

A round: kf/sync_msg from the persisted cursor, page after page while ``has_more`` (empty pages
included). Each item becomes the job ``kf:<open_kfid>:<msgid>``, claimed in the store (the dedup
record), and goes to its customer's lane; only then is the page's ``next_cursor`` stored. A crash
before that repeats the page, and the claims keep every message to one run. Lanes run one
customer's messages in order and different customers at once; the puller keeps the lock until its
lanes are idle, so no other worker starts a customer's next message before the current one is
answered.

Without a cursor (first start) only messages younger than WECOM_KF_HISTORY_SECONDS are answered;
older ones are skipped and counted in the log: sync_msg would hand out up to three days.
"""

from __future__ import annotations

import dataclasses
import enum
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
from app.infra.api.client import WeComClient
from app.infra.api.errors import WeComAPIError
from app.infra.store import Store
from app.jobs import kf_stats
from app.jobs.kf_answers import KfAnswers, is_own_msgid, job_key, recipient
from app.jobs.lanes import Lanes
from app.jobs.leases import LeaseKeeper
from app.jobs.outbox import Outbox
from app.jobs.ticker import Ticker
from app.wecom.kf_items import CUSTOMER, EVENT, event_type, has_welcome_code, origin_of

if TYPE_CHECKING:
    from app.routing.endpoints import Endpoint

log = logging.getLogger(__name__)

ACCOUNTS_KEY = "kf:accounts"  # JSON list of the open_kfids seen, for the sweep
ACCOUNTS_LOCK = "kf:accounts:lock"
WAKE_TTL = 3 * 24 * 3600.0  # sync_msg keeps three days
MAX_PAGES = 100  # per round; a longer backlog continues in the next round
SESSION_SECONDS = 600.0  # a puller hands over after this long
IDLE_WAIT = 0.2  # how often a puller waiting for its lanes looks for a new wake
MAX_STEPS = int(SESSION_SECONDS / IDLE_WAIT) + 10_000  # rounds and waits of one session
MAX_BACKOFF = 60.0  # the doc asks for ≥ 60 s after 45009
#: sync_msg refused the callback Token: the fake answers 95007 ("invalid msg token") for an
#: expired or unknown one. The call works without the Token (rate-limited), so pull on without.
EXPIRED_TOKEN_CODES = frozenset({95007})
#: The stored cursor was refused (50100 in the fake; UNCONFIRMED for WeCom): start again,
#: bounded by the history window, with the job claims guarding against double answers.
BAD_CURSOR_CODES = frozenset({50100})
RATE_LIMIT_CODES = frozenset({45009})

_OPEN_KFID = re.compile(r"[0-9A-Za-z_-]{1,64}")

#: msg_send_fail ``fail_type`` values (protocol reference §8.4).
SEND_FAIL_TYPES = {
    0: "unknown",
    1: "kf account deleted",
    2: "app closed",
    4: "session expired (over 48 h)",
    5: "session closed",
    6: "over the 5-message limit",
    7: "Channels not bound",
    8: "entity not verified",
    9: "Channels not bound and entity not verified",
    10: "customer rejected messages",
    11: "no member ever logged into the WeCom app",
    12: "message type forbidden for 微信客服",
    13: "security restriction",
}


def wake_key(open_kfid: str) -> str:
    return f"kf:wake:{open_kfid}"


def cursor_key(open_kfid: str) -> str:
    return f"kf:cursor:{open_kfid}"


def lock_name(open_kfid: str) -> str:
    return f"kf:pull:{open_kfid}"


def backoff_key(open_kfid: str) -> str:
    return f"kf:backoff:{open_kfid}"


def failures_key(open_kfid: str) -> str:
    return f"kf:failures:{open_kfid}"


def is_doorbell(message: dict[str, Any]) -> bool:
    """A kf_msg_or_event callback (on the kf endpoint or on an app's own endpoint)."""
    return message.get("MsgType") == "event" and message.get("Event") == "kf_msg_or_event"


class _Outcome(enum.Enum):
    DONE = "done"  # caught up: has_more was 0
    MORE = "more"  # stopped early (page bound, shutdown): the wake stays
    FAILED = "failed"  # sync_msg failed: back off, the wake stays
    LOST = "lost"  # another worker took the lock over


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


def _send_time(item: dict[str, Any]) -> float:
    try:
        return float(item.get("send_time") or 0)
    except (TypeError, ValueError):
        return 0.0


class KfPuller:
    """Per worker process: answers doorbells, runs pull sessions, sweeps for orphaned wakes."""

    def __init__(
        self,
        store: Store,
        loop: LeaseKeeper,
        outbox: Outbox,
        answers: KfAnswers,
        endpoints: dict[str, Endpoint],
        client_for: Callable[[Endpoint], WeComClient | None],
        *,
        history_seconds: float = 600.0,
        lease_seconds: float = 30.0,
        page_limit: int = 1000,
        max_workers: int = 32,
        sweep_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.loop = loop
        self.outbox = outbox
        self.answers = answers
        self.endpoints = endpoints
        self.client_for = client_for
        self.history_seconds = history_seconds
        self.lease_seconds = lease_seconds
        self.page_limit = page_limit
        self.max_workers = max_workers
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self._guard = threading.Lock()
        self._sessions: set[str] = set()  # accounts this process is pulling
        self._lanes: dict[str, Lanes] = {}
        self._known: set[str] = set()  # accounts already in ACCOUNTS_KEY
        self._ticker = Ticker("wecom-kf-sweep", sweep_seconds, self.sweep)
        self._stop = self._ticker.stopping  # also tells running pulls to finish their page

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sweeping and starting pulls; running pulls stop after their current page."""
        self._ticker.stop(timeout)

    @property
    def running(self) -> bool:
        return self._ticker.running

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
        for open_kfid in _accounts(self.store.get_value(ACCOUNTS_KEY, self.clock())):
            with self._guard:
                if open_kfid in self._sessions:
                    continue
            if self.store.get_value(wake_key(open_kfid), self.clock()) is None:
                continue
            started += self._try_start(open_kfid)
        return started

    def _remember(self, open_kfid: str) -> None:
        """Add the account to ACCOUNTS_KEY (read-modify-write under a store lock)."""
        if open_kfid in self._known:
            return
        owner = uuid.uuid4().hex
        for _ in range(50):
            now = self.clock()
            if self.store.acquire_lock(ACCOUNTS_LOCK, owner, now + 5.0, now):
                try:
                    accounts = _accounts(self.store.get_value(ACCOUNTS_KEY, now))
                    if open_kfid not in accounts:
                        accounts.append(open_kfid)
                        self.store.set_value(ACCOUNTS_KEY, json.dumps(accounts))
                    self._known.add(open_kfid)
                finally:
                    self.store.release_lock(ACCOUNTS_LOCK, owner)
                return
            time.sleep(0.01)
        log.warning("could not record kf account %s for the sweep; will retry", open_kfid)

    def _try_start(self, open_kfid: str) -> bool:
        with self._guard:
            if self._stop.is_set() or open_kfid in self._sessions:
                return False
            now = self.clock()
            if self.store.get_value(backoff_key(open_kfid), now) is not None:
                return False
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
            self._back_off(open_kfid, None)
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
        key = wake_key(session.open_kfid)
        for _ in range(MAX_STEPS):
            if self._stop.is_set() or session.lost.is_set():
                return
            over = time.monotonic() - session.started > SESSION_SECONDS
            raw = self.store.get_value(key, self.clock())
            if raw is not None and not over:
                outcome = self._round(session, raw)
                metrics.kf_round(session.open_kfid, outcome.value)
                if outcome is _Outcome.DONE:
                    self.store.delete_value(key, if_value=raw)
                    self._recovered(session.open_kfid)
                elif outcome in (_Outcome.FAILED, _Outcome.LOST):
                    return
                continue
            idle = session.lanes.wait_idle(IDLE_WAIT)
            if (idle and raw is None) or over:
                if not idle:
                    log.warning(
                        "kf pull of %s hands over after %.0f s with %d messages still in hand",
                        session.open_kfid,
                        SESSION_SECONDS,
                        session.lanes.pending,
                    )
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

    def _round(self, session: _Session, raw: str) -> _Outcome:
        open_kfid = session.open_kfid
        try:
            wake = json.loads(raw)
        except ValueError:
            wake = {}
        endpoint = self.endpoints.get(str(wake.get("endpoint")))
        if endpoint is None:
            log.error("kf wake of %s names no configured endpoint; dropped", open_kfid)
            return _Outcome.DONE
        client = self.client_for(endpoint)
        if client is None:
            log.error(
                "endpoint %s has no API secret (WECOM_KF_SECRET or WECOM_SECRET): the 微信客服 "
                "messages of %s cannot be pulled",
                endpoint.name,
                open_kfid,
            )
            self._back_off(open_kfid, None)
            return _Outcome.FAILED
        cursor = self.store.get_value(cursor_key(open_kfid), self.clock())
        cutoff = None if cursor else self.clock() - self.history_seconds
        token: str | None = str(wake.get("token") or "") or None
        for _ in range(MAX_PAGES):
            if self._stop.is_set():
                return _Outcome.MORE
            try:
                page = client.kf_sync_msg(token, open_kfid, cursor, self.page_limit)
            except WeComAPIError as exc:
                if token and exc.errcode in EXPIRED_TOKEN_CODES:
                    log.warning(
                        "kf/sync_msg refused the callback token of %s (errcode %s: expired?); "
                        "pulling without it",
                        open_kfid,
                        exc.errcode,
                    )
                    token = None
                    continue
                if cursor and exc.errcode in BAD_CURSOR_CODES:
                    log.error(
                        "kf/sync_msg refused the stored cursor of %s (errcode %s); starting over "
                        "with the last %.0f s",
                        open_kfid,
                        exc.errcode,
                        self.history_seconds,
                    )
                    self.store.delete_value(cursor_key(open_kfid))
                    cursor, cutoff = None, self.clock() - self.history_seconds
                    continue
                log.error("kf/sync_msg for %s failed: %s", open_kfid, exc)
                self._back_off(open_kfid, exc)
                return _Outcome.FAILED
            items = page.get("msg_list") or []
            kf_stats.record_page(self.store, open_kfid, items, page.get("has_more"), self.clock())
            self._take(session, endpoint, items, cutoff)
            if not self._renew(session):
                return _Outcome.LOST  # the next holder reads this page again; claims dedup it
            next_cursor = str(page.get("next_cursor") or "")
            if next_cursor and next_cursor != cursor:
                self.store.set_value(cursor_key(open_kfid), next_cursor)
                cursor = next_cursor
            if not page.get("has_more"):
                return _Outcome.DONE
        log.info("kf backlog of %s continues after %d pages", open_kfid, MAX_PAGES)
        return _Outcome.MORE

    def _take(
        self, session: _Session, endpoint: Endpoint, items: list[Any], cutoff: float | None
    ) -> None:
        """Claim each new item as a job and hand it to its customer's lane; welcomes first
        (a welcome_code lives 20 s)."""
        open_kfid = session.open_kfid
        items = [item for item in items if isinstance(item, dict)]
        welcomes = [item for item in items if has_welcome_code(item)]
        ordered = welcomes + [item for item in items if not has_welcome_code(item)]
        taken = repeated = old = ignored = 0
        for item in ordered:
            msgid = str(item.get("msgid") or "")
            if not msgid or origin_of(item) not in (CUSTOMER, EVENT) or is_own_msgid(msgid):
                ignored += 1  # servicer messages (origin 5), our own echoes, malformed items
                continue
            if cutoff is not None and _send_time(item) < cutoff:
                old += 1
                continue
            key = job_key(open_kfid, msgid)
            payload = {"endpoint": endpoint.name, "open_kfid": open_kfid, "message": item}
            created, _ = self.store.claim_job(
                key,
                "kf",
                json.dumps(payload, ensure_ascii=False),
                self.loop.owner,
                self.loop.lease_until(),
                self.clock(),
            )
            if not created:
                repeated += 1
                continue
            if event_type(item) == "msg_send_fail":
                _log_send_fail(open_kfid, item)
            self.loop.hold(key)
            session.lanes.submit(
                recipient(item) or f"event:{msgid}",
                functools.partial(self._answer, key, payload),
                first=has_welcome_code(item),
            )
            taken += 1
        if old:
            log.info(
                "kf %s: first pull without a cursor skipped %d messages older than %.0f s "
                "(WECOM_KF_HISTORY_SECONDS)",
                open_kfid,
                old,
                self.history_seconds,
            )
        if taken or repeated or ignored:
            log.debug(
                "kf %s: %d new, %d seen before, %d not for us", open_kfid, taken, repeated, ignored
            )

    def _answer(self, key: str, payload: dict[str, Any]) -> None:
        """Run the handler of one job and deliver its answer (in the customer's lane)."""
        try:
            try:
                entry = self.answers.answer(payload)
            except Exception as exc:
                message = payload["message"]
                log.exception(
                    "kf handler failed on %s (msgtype %s, event %s)",
                    key,
                    message.get("msgtype"),
                    event_type(message) or "-",
                )
                self.outbox.finish(key, None, f"handler raised {type(exc).__name__}: {exc}")
            else:
                self.outbox.finish(key, entry)
        except Exception:
            log.exception("could not record the answer of %s; recovery will finish it", key)
        finally:
            self.loop.release(key)

    # -- back-off after failed pulls ---------------------------------------------------------
    def _back_off(self, open_kfid: str, exc: WeComAPIError | None) -> None:
        now = self.clock()
        try:
            failures = int(self.store.get_value(failures_key(open_kfid), now) or 0) + 1
        except ValueError:
            failures = 1
        if exc is not None and exc.errcode in RATE_LIMIT_CODES:
            delay = MAX_BACKOFF
        else:
            delay = min(2.0 ** (failures - 1), MAX_BACKOFF)
        self.store.set_value(failures_key(open_kfid), str(failures), now + 3600)
        self.store.set_value(backoff_key(open_kfid), str(now + delay), now + delay)
        log.warning("kf pull of %s paused for %.0f s (failure %d)", open_kfid, delay, failures)

    def _recovered(self, open_kfid: str) -> None:
        now = self.clock()
        if self.store.get_value(failures_key(open_kfid), now) is not None:
            self.store.delete_value(failures_key(open_kfid))


def _log_send_fail(open_kfid: str, item: dict[str, Any]) -> None:
    event = item.get("event") or {}
    try:
        fail_type = int(event.get("fail_type"))
    except (TypeError, ValueError):
        fail_type = -1
    log.warning(
        "kf %s: message %s to %s was not delivered: fail_type %s (%s)",
        open_kfid,
        event.get("fail_msgid", "-"),
        event.get("external_userid", "-"),
        fail_type,
        SEND_FAIL_TYPES.get(fail_type, "not documented"),
    )
