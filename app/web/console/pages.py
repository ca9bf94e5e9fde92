"""The console's read-only pages: overview, dead letters, pending work, 微信客服, endpoints,
recent callbacks and one job. Message content is shown only with WECOM_CONSOLE_SHOW_CONTENT=1."""

from __future__ import annotations

import collections
import json
import time
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template, request

from app.infra.store import Job, JobState
from app.jobs import kf_stats
from app.jobs.kf_puller import wake_key
from app.jobs.kf_sync import backoff_key, cursor_key, failures_key
from app.web.console import admin_state, charts, console_blueprint
from app.web.metrics_endpoint import kf_accounts

LIST_LIMIT = 200
PENDING_STATES = (JobState.RUNNING, JobState.DEFERRED, JobState.OUTBOX)
#: Message fields that describe a message without saying what it says.
APP_METADATA = ("MsgType", "MsgId", "Event", "EventKey", "FromUserName", "CreateTime", "AgentID")
KF_METADATA = ("msgtype", "msgid", "open_kfid", "external_userid", "origin", "send_time")


def _service() -> Any:
    return current_app.extensions["wecom"]


def _show_content() -> bool:
    return bool(_service().settings.console_show_content)


def age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def mask(secret: str) -> str:
    return f"set ({len(secret)} characters)" if secret else "not set"


def job_summary(job: Job) -> dict[str, Any]:
    """A job's metadata for a table row: endpoint, message type, id; never its content."""
    try:
        payload = json.loads(job.payload)
    except ValueError:
        payload = {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    if job.kind == "kf":
        event = message.get("event") if isinstance(message.get("event"), dict) else {}
        msgtype = str(message.get("msgtype") or "-")
        ident = event.get("event_type") or message.get("msgid") or "-"
    else:
        msgtype = str(message.get("MsgType") or "-")
        ident = message.get("MsgId") or message.get("Event") or "-"
    now = time.time()
    return {
        "key": job.key,
        "kind": job.kind,
        "state": job.state.value,
        "endpoint": str(payload.get("endpoint") or "-"),
        "msgtype": msgtype,
        "ident": str(ident),
        "attempts": job.attempts,
        "reason": job.last_error or "",
        "age": age(now - job.created_at),
        "updated": age(now - job.updated_at),
        "next": age(job.lease_until - now) if job.state == JobState.OUTBOX else "",
        "worker": (job.owner or "").split(":")[1] if job.owner and ":" in job.owner else "-",
    }


@console_blueprint.get("")
@console_blueprint.get("/")
def overview() -> str:
    service = _service()
    minutes = admin_state().history.minutes(60)
    totals: collections.Counter[str] = collections.Counter()
    for minute in minutes:
        totals.update(minute.counts)
    outcomes = {o: totals.get(f"outcome:{o}", 0) for o in charts.STACK}
    cumulative = {k[3:]: v for k, v in totals.items() if k.startswith("le:")}
    buckets = charts.buckets_from(cumulative)
    deliveries = sorted(
        ((k.split(":", 2)[1:], v) for k, v in totals.items() if k.startswith("delivery:") and v),
        key=lambda item: -item[1],
    )
    delivery_rows = [
        (f"{result} {'' if code in ('0', 'none') else code}".strip(), value, f"d-{result}")
        for (result, code), value in deliveries
    ]
    answered = outcomes["passive"] + outcomes["deferred"] + outcomes["failed"]
    share_parts = [("passive", outcomes["passive"]), ("deferred", outcomes["deferred"])]
    share_parts.append(("failed", outcomes["failed"]))
    late_answers = sum(b.count for b in buckets if b.late)
    store = service.store
    return render_template(
        "console/overview.html",
        page="overview",
        total=sum(outcomes.values()),
        outcomes=outcomes,
        answered=answered,
        late_answers=late_answers,
        per_minute=charts.per_minute(
            [(m.start, {o: m.get(f"outcome:{o}") for o in charts.STACK}) for m in minutes]
        ),
        answer_chart=charts.answer_times(buckets, service.settings.reply_deadline),
        buckets=buckets,
        share_chart=charts.shares(share_parts),
        share_parts=[(n, v, (v / answered if answered else 0.0)) for n, v in share_parts],
        delivery_chart=charts.horizontal_bars(delivery_rows),
        delivery_rows=delivery_rows,
        dead=store.count_jobs(JobState.DEAD, 10_000),
        pending={s.value: store.count_jobs(s, 10_000) for s in PENDING_STATES},
    )


@console_blueprint.get("/dead")
def dead_letters() -> str:
    jobs = _service().store.list_jobs(JobState.DEAD, LIST_LIMIT)
    rows = [job_summary(job) for job in reversed(jobs)]  # newest first
    return render_template("console/dead.html", page="dead", rows=rows, limit=LIST_LIMIT)


@console_blueprint.get("/pending")
def pending() -> str:
    store = _service().store
    rows = [job_summary(job) for state in PENDING_STATES for job in store.list_jobs(state, 100)]
    return render_template("console/pending.html", page="pending", rows=rows)


@console_blueprint.get("/kf")
def kf_accounts_page() -> str:
    store = _service().store
    now = time.time()
    rows = []
    for account in kf_accounts(store, now):
        stats = kf_stats.read(store, account, now)
        backoff = store.get_value(backoff_key(account), now)
        rows.append(
            {
                "account": account,
                "lag": f"{stats.lag:.1f} s" if stats else "-",
                "last_pull": f"{when(stats.last_pull)} ({age(now - stats.last_pull)} ago)"
                if stats
                else "never",
                "pulled": stats.pulled if stats else 0,
                "cursor": "stored" if store.get_value(cursor_key(account), now) else "none yet",
                "waiting": store.get_value(wake_key(account), now) is not None,
                "paused": age(float(backoff) - now) if backoff else "",
                "failures": store.get_value(failures_key(account), now) or "0",
            }
        )
    return render_template("console/kf.html", page="kf", rows=rows)


@console_blueprint.get("/endpoints")
def endpoints() -> str:
    service = _service()
    forward = service.settings.forward
    forward_shown = ""
    if forward is not None:
        parts = urlsplit(forward.url)
        port = f":{parts.port}" if parts.port else ""
        forward_shown = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    rows = []
    for endpoint in service.endpoints.values():
        settings = endpoint.settings
        rows.append(
            {
                "name": settings.name,
                "path": settings.path,
                "kind": settings.kind,
                "handlers": (settings.handlers or "forward") if settings.kind == "app" else "-",
                "kf_handlers": settings.kf_handlers or "forward",
                "receive_id": settings.receive_id,
                "agent_id": settings.agent_id or "-",
                "token": mask(settings.token),
                "aes_key": mask(settings.aes_key),
                "secret": mask(settings.secret),
                "kf_secret": mask(settings.kf_secret),
            }
        )
    return render_template(
        "console/endpoints.html",
        page="endpoints",
        rows=rows,
        forward=forward_shown,
        deadline=service.settings.reply_deadline,
    )


@console_blueprint.get("/recent")
def recent() -> str:
    now = time.time()
    entries = admin_state().history.recent()
    for entry in entries:
        entry["ago"] = age(now - float(entry.get("at") or now))
        if not _show_content():
            entry.pop("content", None)
    return render_template(
        "console/recent.html", page="recent", entries=entries, show_content=_show_content()
    )


@console_blueprint.get("/job")
def job() -> tuple[str, int] | str:
    key = request.args.get("key", "")
    found = _service().store.get_job(key) if key else None
    if found is None:
        return render_template("console/job.html", page="dead", job=None, key=key), 404
    try:
        payload = json.loads(found.payload)
    except ValueError:
        payload = {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    names = KF_METADATA if found.kind == "kf" else APP_METADATA
    metadata = [(name, message[name]) for name in names if name in message]
    content = None
    if _show_content():
        content = json.dumps(message, ensure_ascii=False, indent=2)
    return render_template(
        "console/job.html",
        page="dead",
        job=job_summary(found),
        metadata=metadata,
        content=content,
        created=when(found.created_at),
        updated=when(found.updated_at),
        show_content=_show_content(),
    )
