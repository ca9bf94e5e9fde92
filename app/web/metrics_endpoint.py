"""``/metrics``: the Prometheus exposition, behind the admin token.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set by gunicorn.conf.py) the counters and histograms
of all workers, dead ones included, are summed from their files; in a single process the default
registry is served (with process and Python metrics). Either way the state of the store is read at
scrape time by :class:`StoreCollector`, bounded: dead letters and pending work are counted up to
:data:`COUNT_LIMIT`, kf accounts up to :data:`ACCOUNT_LIMIT`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from app.infra.store import JobState
from app.jobs import kf_stats
from app.jobs.kf_puller import ACCOUNTS_KEY
from app.web import access

log = logging.getLogger(__name__)

COUNT_LIMIT = 10_000
ACCOUNT_LIMIT = 100
PENDING_STATES = (JobState.RUNNING, JobState.DEFERRED, JobState.OUTBOX)

metrics_blueprint = Blueprint("wecom_metrics", __name__)


def kf_accounts(store: Any, now: float) -> list[str]:
    try:
        value = json.loads(store.get_value(ACCOUNTS_KEY, now) or "[]")
    except ValueError:
        return []
    return [str(item) for item in value][:ACCOUNT_LIMIT] if isinstance(value, list) else []


class StoreCollector:
    """Gauges read from the store at scrape time (shared by all workers, so not per process)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration; collect() reads the store per scrape

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("wecom_store_up", "1 when the store could be read at scrape time.")
        try:
            families = list(self._read())
        except Exception as exc:
            log.error("metrics: the store cannot be read: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        store = self.service.store
        now = time.time()
        dead = GaugeMetricFamily(
            "wecom_dead_letters", f"Jobs given up (dead letters), counted up to {COUNT_LIMIT}."
        )
        dead.add_metric([], store.count_jobs(JobState.DEAD, COUNT_LIMIT))
        yield dead
        pending = GaugeMetricFamily(
            "wecom_pending_jobs",
            f"Unfinished jobs by state (running, deferred, outbox), counted up to {COUNT_LIMIT}.",
            labels=["state"],
        )
        oldest = GaugeMetricFamily(
            "wecom_pending_oldest_age_seconds",
            "Age of the least recently updated unfinished job, by state.",
            labels=["state"],
        )
        for state in PENDING_STATES:
            pending.add_metric([state.value], store.count_jobs(state, COUNT_LIMIT))
            first = store.list_jobs(state, 1)
            oldest.add_metric([state.value], max(now - first[0].updated_at, 0.0) if first else 0)
        yield pending
        yield oldest
        lag = GaugeMetricFamily(
            "wecom_kf_cursor_lag_seconds",
            "Age of the newest 微信客服 message at its pull (0 once caught up), per account.",
            labels=["account"],
        )
        last_pull = GaugeMetricFamily(
            "wecom_kf_last_pull_timestamp_seconds",
            "When the account's messages were last pulled (Unix time).",
            labels=["account"],
        )
        for account in kf_accounts(store, now):
            stats = kf_stats.read(store, account, now)
            if stats is not None:
                lag.add_metric([account], stats.lag)
                last_pull.add_metric([account], stats.last_pull)
        yield lag
        yield last_pull


class _DefaultRegistry:
    """The process's default registry, as one collector of a per-scrape registry."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(service: Any) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(StoreCollector(service))
    return generate_latest(registry)


@metrics_blueprint.get("/metrics")
def metrics() -> Response:
    service = current_app.extensions["wecom"]
    address = request.remote_addr or "-"
    limiter = current_app.extensions["wecom_admin"].limiter
    wait = limiter.retry_after(address)
    if wait:
        log.warning("metrics: too many failed tokens from %s; refused", address)
        response = Response("too many failed attempts\n", status=429, mimetype="text/plain")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not access.bearer_matches(
        request.headers.get("Authorization"), service.settings.admin_token
    ):
        limiter.failed(address)
        log.warning("metrics: missing or wrong bearer token from %s", address)
        response = Response("bearer token required\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="wecom-metrics"'
        return response
    limiter.succeeded(address)
    return Response(exposition(service), mimetype=CONTENT_TYPE_LATEST)


@metrics_blueprint.after_request
def _headers(response: Response) -> Response:
    return access.add_security_headers(response)
