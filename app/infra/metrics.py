"""The service's Prometheus metrics, and the note each callback carries while it is answered.

Every metric is defined here, in a low layer, so the store, the API client, the jobs and the web
layer record with one cheap call (a label lookup and an add). Under gunicorn the metrics live in
``PROMETHEUS_MULTIPROC_DIR`` (set by gunicorn.conf.py, see :mod:`app.web.metrics_dir`) and
``/metrics`` sums the files of all workers; in a single process they are plain in-memory values.

Names follow Prometheus conventions: a ``wecom_`` prefix, base units (seconds), ``_total`` on
counters. Label values come from configuration (endpoint, kf account) or from small fixed sets
(outcomes, message types); a WeCom errcode is a number WeCom chose, so also a small set.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram, disable_created_metrics

# ``_created`` series double the output and say nothing an operator needs here.
disable_created_metrics()

#: The answer-time buckets show the 5-second window: fine steps up to it, then beyond.
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BACKEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

#: Callback outcomes: answered in the response (with a reply or empty), missed the deadline
#: (answer goes through the API), a retried callback recognised, refused (4xx), failed (the
#: handler raised in time, or the store could not accept it), a 微信客服 doorbell (pull started).
OUTCOMES = ("passive", "deferred", "retry", "refused", "failed", "doorbell")
KNOWN_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "location", "link", "event", "file", "markdown"}
)

CALLBACKS = Counter(
    "wecom_callbacks_total",
    "Callbacks received, by endpoint, kind, msgtype, outcome and (for refused) reason class.",
    ["endpoint", "kind", "msgtype", "outcome", "reason"],
)
ANSWER_SECONDS = Histogram(
    "wecom_callback_answer_seconds",
    "Time from a callback's arrival to its answer; WeCom waits 5 s.",
    ["endpoint"],
    buckets=ANSWER_BUCKETS,
)
DELIVERIES = Counter(
    "wecom_late_deliveries_total",
    "Answers sent through the API (late app answers, every 微信客服 answer), by result "
    "(delivered, retry, dead) and WeCom errcode (0 when delivered, none without one).",
    ["kind", "result", "errcode"],
)
TOKEN_FETCHES = Counter(
    "wecom_token_fetches_total",
    "gettoken calls that returned a token, by reason (missing, expiring).",
    ["reason"],
)
TOKEN_REJECTIONS = Counter(
    "wecom_token_rejections_total",
    "Cached access_tokens WeCom refused (40014, 42001, ...), each forcing a refresh.",
)
KF_PULL_ROUNDS = Counter(
    "wecom_kf_pull_rounds_total",
    "微信客服 pull rounds (kf/sync_msg until has_more is 0), by account and outcome.",
    ["account", "outcome"],
)
KF_MESSAGES_PULLED = Counter(
    "wecom_kf_messages_pulled_total",
    "Items returned by kf/sync_msg, by account.",
    ["account"],
)
STORE_SECONDS = Histogram(
    "wecom_store_operation_seconds",
    "Duration of one store operation, by operation.",
    ["operation"],
    buckets=STORE_BUCKETS,
)
BACKEND_REQUESTS = Counter(
    "wecom_backend_requests_total",
    "Calls to a business backend (the forward URL, the LLM), by backend and result.",
    ["backend", "result"],
)
BACKEND_SECONDS = Histogram(
    "wecom_backend_request_seconds",
    "Duration of one call to a business backend.",
    ["backend"],
    buckets=BACKEND_BUCKETS,
)


# -- one-line hooks ------------------------------------------------------------------------------
def delivered(kind: str) -> None:
    DELIVERIES.labels(kind, "delivered", "0").inc()


def delivery_failed(kind: str, result: str, errcode: int | None) -> None:
    """``result`` is "retry" (tried again later) or "dead" (given up)."""
    DELIVERIES.labels(kind, result, "none" if errcode is None else str(errcode)).inc()


def kf_round(account: str, outcome: str) -> None:
    KF_PULL_ROUNDS.labels(account, outcome).inc()


def backend_call(backend: str, result: str, started: float) -> None:
    """``started`` is a ``time.monotonic()`` reading from before the call."""
    BACKEND_REQUESTS.labels(backend, result).inc()
    BACKEND_SECONDS.labels(backend).observe(time.monotonic() - started)


def msgtype_label(msgtype: Any) -> str:
    """A bounded label value for a message's MsgType."""
    value = str(msgtype or "-")
    return value if value in KNOWN_MSGTYPES or value == "-" else "other"


# -- the note of the callback being answered -----------------------------------------------------
@dataclass
class CallbackNote:
    """What one callback turned out to be; filled in while it is answered, read when it is."""

    endpoint: str
    kind: str
    received_at: float  # time.monotonic()
    msgtype: str = "-"
    ident: str = "-"  # "MsgId=…", or "Event=…" for events
    outcome: str = "passive"
    reason: str = ""  # the reason class of a refusal (signature, decrypt, …)
    detail: str = ""  # the refusal's text, for the log line
    content: str | None = None  # text content, kept only where the console may show it


_CURRENT: contextvars.ContextVar[CallbackNote | None] = contextvars.ContextVar(
    "wecom_callback_note", default=None
)


def begin_callback(note: CallbackNote) -> contextvars.Token:
    return _CURRENT.set(note)


def end_callback(token: contextvars.Token) -> None:
    _CURRENT.reset(token)


def current_callback() -> CallbackNote | None:
    return _CURRENT.get()


def note_outcome(outcome: str) -> None:
    """Record how the callback being answered (in this greenlet or thread) ended; a no-op
    outside a callback (recovery, the CLI)."""
    note = _CURRENT.get()
    if note is not None:
        note.outcome = outcome


def note_refused(reason: str, detail: str) -> None:
    note = _CURRENT.get()
    if note is not None:
        note.outcome, note.reason, note.detail = "refused", reason, detail
