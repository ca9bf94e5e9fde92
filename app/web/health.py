"""``/healthz``: 200 with a short JSON report, 503 when the store cannot be read."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app

from app.infra.store import JobState

log = logging.getLogger(__name__)

DEAD_LETTERS_SHOWN = 100  # /healthz counts dead letters up to this many

health_blueprint = Blueprint("health", __name__)


def health_report(service: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, report) for the service (``app.extensions["wecom"]``)."""
    bots = [bot.name for bot in service.settings.bots.bots]
    report: dict[str, Any] = {
        "status": "ok",
        "endpoints": sorted([*service.endpoints, *bots]),
        "development_profile": service.dev_profile,
    }
    try:
        dead = len(service.store.list_jobs(JobState.DEAD, DEAD_LETTERS_SHOWN))
    except Exception as exc:
        log.error("health check: the store cannot be read: %s: %s", type(exc).__name__, exc)
        report["status"] = "store unavailable"
        return 503, report
    report["dead_letters"] = dead if dead < DEAD_LETTERS_SHOWN else f"{dead}+"
    return 200, report


@health_blueprint.get("/healthz")
def healthz() -> Response:
    status, report = health_report(current_app.extensions["wecom"])
    return Response(json.dumps(report), status=status, mimetype="application/json")
