"""``/healthz``: 200 with a short JSON report, 503 when the store cannot be read."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app

from app.infra.store import JobState, StoreBusy, patience

log = logging.getLogger(__name__)

DEAD_LETTERS_SHOWN = 100  # /healthz counts dead letters up to this many
HEALTH_WAIT = 0.2  # seconds a /healthz read may wait for the store (reads rarely wait at all)

health_blueprint = Blueprint("health", __name__)


def health_report(service: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, report) for the service (``app.extensions["wecom"]``).

    Answers at once: the store is asked without waiting for a lock. ``store`` is ``ok``,
    ``busy`` (another process holds it: callbacks get 503 until it is free) or ``unavailable``;
    ``store_file`` appears for an hour after the SQLite file was deleted or replaced.
    """
    bots = [bot.name for bot in service.settings.bots.bots]
    report: dict[str, Any] = {
        "status": "ok",
        "endpoints": sorted([*service.endpoints, *bots]),
        "development_profile": service.dev_profile,
    }
    try:
        store = service.store
        report.update(store.health())
        with patience(HEALTH_WAIT):
            dead = len(store.list_jobs(JobState.DEAD, DEAD_LETTERS_SHOWN))
    except StoreBusy:
        report.setdefault("store", "busy")
        dead = None
    except Exception as exc:
        log.error("health check: the store cannot be read: %s: %s", type(exc).__name__, exc)
        report["status"] = "store unavailable"
        report["store"] = f"unavailable ({type(exc).__name__})"
        return 503, report
    if dead is not None:
        report["dead_letters"] = dead if dead < DEAD_LETTERS_SHOWN else f"{dead}+"
    if report.get("store") == "busy":
        report["status"] = "store busy"
        return 503, report
    if "store_file" in report:
        report["status"] = "store file replaced"
    return 200, report


@health_blueprint.get("/healthz")
def healthz() -> Response:
    status, report = health_report(current_app.extensions["wecom"])
    return Response(json.dumps(report), status=status, mimetype="application/json")
