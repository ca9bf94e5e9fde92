"""One round of kf/sync_msg for one 微信客服 account, and the intake of the items it brings.

A round pages through kf/sync_msg (``WeComClient.iter_kf_sync``) from the persisted cursor while
``has_more``, empty pages included. Each item becomes the job ``kf:<open_kfid>:<msgid>``, claimed
in the store (the dedup record), and goes to its customer's lane; only then is the page's
``next_cursor`` stored. A crash before that repeats the page, and the claims keep every message
to one run. Welcomes go first in their page: a welcome_code lives 20 s.

Without a cursor (first start) only messages younger than WECOM_KF_HISTORY_SECONDS are answered;
older ones are skipped and counted in the log: sync_msg would hand out up to three days.

A round that fails pauses the account's pulls, longer after each failure in a row (a minute after
a rate limit); the sweep resumes them once the pause is over. The pull session around rounds, and
who may run one, is :mod:`app.jobs.kf_puller`'s.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.infra.api.client import WeComClient
from app.infra.api.errors import WeComAPIError
from app.infra.store import Store
from app.jobs import kf_stats
from app.jobs.failures import describe, is_shutdown
from app.jobs.kf_answers import KfAnswers, is_own_msgid, job_key, recipient
from app.jobs.lanes import Lanes
from app.jobs.leases import LeaseKeeper
from app.jobs.outbox import Outbox
from app.wecom.kf_items import CUSTOMER, EVENT, event_type, has_welcome_code, origin_of

if TYPE_CHECKING:
    from app.routing.endpoints import Endpoint

log = logging.getLogger(__name__)

MAX_PAGES = 100  # per round; a longer backlog continues in the next round
MAX_BACKOFF = 60.0  # the doc asks for ≥ 60 s after 45009
#: sync_msg refused the callback Token: the fake answers 95007 ("invalid msg token") for an
#: expired or unknown one. The call works without the Token (rate-limited), so pull on without.
EXPIRED_TOKEN_CODES = frozenset({95007})
#: The stored cursor was refused (50100 in the fake; UNCONFIRMED for WeCom): start again,
#: bounded by the history window, with the job claims guarding against double answers.
BAD_CURSOR_CODES = frozenset({50100})
RATE_LIMIT_CODES = frozenset({45009})

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


def cursor_key(open_kfid: str) -> str:
    return f"kf:cursor:{open_kfid}"


def lock_name(open_kfid: str) -> str:
    """The store lock of the account's one puller; the cursor is written only under it."""
    return f"kf:pull:{open_kfid}"


def backoff_key(open_kfid: str) -> str:
    return f"kf:backoff:{open_kfid}"


def failures_key(open_kfid: str) -> str:
    return f"kf:failures:{open_kfid}"


class Outcome(enum.Enum):
    DONE = "done"  # caught up: has_more was 0
    MORE = "more"  # stopped early (page bound, shutdown): the wake stays
    FAILED = "failed"  # sync_msg failed: backed off, the wake stays
    LOST = "lost"  # another worker took the pull lock over


def _send_time(item: dict[str, Any]) -> float:
    try:
        return float(item.get("send_time") or 0)
    except (TypeError, ValueError):
        return 0.0


class KfSync:
    """Runs sync rounds for the pull sessions of one worker process."""

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
        page_limit: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.loop = loop
        self.outbox = outbox
        self.answers = answers
        self.endpoints = endpoints
        self.client_for = client_for
        #: Set at shutdown (by the puller's ticker): a round stops after its current page.
        self.stopping = threading.Event()
        self.history_seconds = history_seconds
        self.page_limit = page_limit
        self.clock = clock

    # -- one round ---------------------------------------------------------------------------
    def run(
        self,
        open_kfid: str,
        wake: str,
        lanes: Lanes,
        renew: Callable[[], bool],
        owner: str,
    ) -> Outcome:
        """Pull what ``wake`` (the stored doorbell) announced into ``lanes``.

        ``renew`` extends the caller's pull lock after each page and says False once it is lost.
        ``owner`` holds that lock: the cursor is written only while it still does (one atomic
        store step), so a holder that lost the lock meanwhile cannot move the cursor back.
        """
        try:
            doorbell = json.loads(wake)
        except ValueError:
            doorbell = {}
        endpoint = self.endpoints.get(str(doorbell.get("endpoint")))
        if endpoint is None:
            log.error("kf wake of %s names no configured endpoint; dropped", open_kfid)
            return Outcome.DONE
        client = self.client_for(endpoint)
        if client is None:
            log.error(
                "endpoint %s has no API secret (WECOM_KF_SECRET or WECOM_SECRET): the 微信客服 "
                "messages of %s cannot be pulled",
                endpoint.name,
                open_kfid,
            )
            self.back_off(open_kfid, None)
            return Outcome.FAILED
        cursor = self.store.get_value(cursor_key(open_kfid), self.clock())
        cutoff = None if cursor else self.clock() - self.history_seconds
        token: str | None = str(doorbell.get("token") or "") or None
        pages = 0
        # One pass per run of the pager; a refused token or cursor starts another without it.
        while pages < MAX_PAGES and not self.stopping.is_set():
            try:
                for page in client.iter_kf_sync(
                    token, open_kfid, cursor, limit=self.page_limit, max_pages=MAX_PAGES - pages
                ):
                    pages += 1
                    items = page.get("msg_list") or []
                    kf_stats.record_page(
                        self.store, open_kfid, items, page.get("has_more"), self.clock()
                    )
                    self._take(open_kfid, lanes, endpoint, items, cutoff)
                    if not renew():
                        return Outcome.LOST  # the next holder reads this page again
                    next_cursor = str(page.get("next_cursor") or "")
                    if next_cursor and next_cursor != cursor:
                        if not self.store.set_value_if_locked(
                            cursor_key(open_kfid),
                            next_cursor,
                            lock_name(open_kfid),
                            owner,
                            self.clock(),
                        ):
                            return Outcome.LOST  # the new holder reads this page again
                        cursor = next_cursor
                    if not page.get("has_more"):
                        self._recovered(open_kfid)
                        return Outcome.DONE
                    if self.stopping.is_set():
                        return Outcome.MORE
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
                self.back_off(open_kfid, exc)
                return Outcome.FAILED
        if pages >= MAX_PAGES:
            log.info("kf backlog of %s continues after %d pages", open_kfid, MAX_PAGES)
        return Outcome.MORE

    # -- item intake -------------------------------------------------------------------------
    def _take(
        self,
        open_kfid: str,
        lanes: Lanes,
        endpoint: Endpoint,
        items: list[Any],
        cutoff: float | None,
    ) -> None:
        """Claim each new item as a job and hand it to its customer's lane, welcomes first."""
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
            lanes.submit(
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
            except BaseException as exc:  # anything a handler raises, sys.exit() included
                if is_shutdown(exc):
                    raise  # the process stops: the job stays for another worker
                message = payload["message"]
                log.exception(
                    "kf handler failed on %s (msgtype %s, event %s)",
                    key,
                    message.get("msgtype"),
                    event_type(message) or "-",
                )
                self.outbox.finish(key, None, describe(exc))
            else:
                self.outbox.finish(key, entry)
        except Exception:
            log.exception("could not record the answer of %s; recovery will finish it", key)
        finally:
            self.loop.release(key)

    # -- back-off after failed rounds --------------------------------------------------------
    def paused(self, open_kfid: str) -> bool:
        """True while the account's pulls are backed off."""
        return self.store.get_value(backoff_key(open_kfid), self.clock()) is not None

    def back_off(self, open_kfid: str, exc: WeComAPIError | None) -> None:
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
