"""WeCom (企业微信) and 微信客服 callback service: the Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import DEFAULTS, SettingError, from_environment

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["SettingError", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``WECOM_*`` environment variables, then ``config``.

    A bad setting raises :class:`SettingError` naming it.
    """
    # Imported here so that ``import app.wecom`` (the pure protocol layer) never loads Flask.
    from flask import Flask

    from .cli import register_cli
    from .service import CallbackService
    from .transport import health_blueprint

    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    _configure_logging()
    CallbackService().init_app(app)
    app.register_blueprint(health_blueprint)
    register_cli(app)
    return app


def _configure_logging() -> None:
    """Give the service's own loggers a handler unless the host (gunicorn, pytest) set one up."""
    logger = logging.getLogger("app")
    if logger.handlers or logging.getLogger().handlers:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
