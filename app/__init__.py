"""WeCom (企业微信) and 微信客服 callback service: the Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .settings import DEFAULTS, SettingError, from_environment

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["SettingError", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``WECOM_*`` environment variables, then ``config``.

    A bad setting raises :class:`SettingError` naming it.
    """
    # Imported here so that ``import app.wecom`` (the pure protocol layer) never loads Flask.
    from flask import Flask

    from .web.blueprint import health_blueprint
    from .web.cli import register_cli
    from .web.extension import CallbackService

    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    _configure_logging(app.config["WECOM_LOG_LEVEL"])
    CallbackService().init_app(app)
    app.register_blueprint(health_blueprint)
    register_cli(app)
    return app


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _configure_logging(level_name: str) -> None:
    """Set the service's log level (WECOM_LOG_LEVEL) and give its loggers a handler unless the
    host (gunicorn, pytest) set one up."""
    level_name = str(level_name).upper()
    if level_name not in LOG_LEVELS:
        raise SettingError("WECOM_LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")
    logger = logging.getLogger("app")
    logger.setLevel(level_name)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
