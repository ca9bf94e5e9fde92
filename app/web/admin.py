"""The admin surface: ``/metrics`` and ``/console``, mounted only when WECOM_ADMIN_TOKEN is set
(without it both paths are simply not there: 404)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.settings import SettingError
from app.web import access
from app.web.console import AdminState, console_blueprint
from app.web.console.history import History
from app.web.metrics_endpoint import metrics_blueprint

ADMIN_PATHS = ("/metrics", "/console")


def init_admin(app: Flask, service: Any) -> None:
    token = service.settings.admin_token
    if not token:
        return
    for endpoint in service.settings.endpoints:
        taken = [p for p in ADMIN_PATHS if endpoint.path == p or endpoint.path.startswith(p + "/")]
        if taken:
            raise SettingError(
                "WECOM_ADMIN_TOKEN",
                f"the console needs {taken[0]}, where endpoint {endpoint.name} is mounted",
            )
    access.configure_sessions(app, token)
    history = History(lambda: service.store)
    app.extensions["wecom_admin"] = AdminState(history=history)
    app.extensions["wecom_history"] = history
    app.register_blueprint(metrics_blueprint)
    app.register_blueprint(console_blueprint)
