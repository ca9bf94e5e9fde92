"""WeCom (企业微信) and 微信客服 callback service: the Flask application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .settings import SettingError, Settings, load_settings

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["SettingError", "Settings", "create_app", "load_settings"]


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the app from :class:`Settings`: defaults, then ``WECOM_*`` environment variables,
    then ``config`` (a mapping of settings, or a ready :class:`Settings`).

    A bad setting raises :class:`SettingError` naming it. Keys of ``config`` that are not
    ``WECOM_*`` settings (``TESTING``, ``SECRET_KEY`` …) go to Flask's own config.
    """
    # Imported here so that ``import app.wecom`` (the pure protocol layer) never loads Flask.
    from flask import Flask

    from .web.admin import init_admin
    from .web.cli import register_cli
    from .web.extension import WeComService
    from .web.health import health_blueprint
    from .web.logs import configure_logging
    from .web.startup import log_summary, started_by_flask_run

    if isinstance(config, Settings):
        settings, flask_config = config, {}
    else:
        settings = load_settings(config)
        flask_config = {k: v for k, v in (config or {}).items() if not k.startswith("WECOM_")}
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__)
    app.config.update(flask_config)
    service = WeComService(settings)
    service.init_app(app)
    init_admin(app, service)  # /metrics and /console, when WECOM_ADMIN_TOKEN is set
    app.register_blueprint(health_blueprint)
    register_cli(app)
    log_summary(settings, loud=started_by_flask_run())
    return app
