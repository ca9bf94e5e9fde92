"""One log format for the service's lines and gunicorn's, set up once per process."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
SERVICE_LOGGER = "app"


def formatter() -> logging.Formatter:
    return logging.Formatter(LOG_FORMAT, DATE_FORMAT)


def configure_logging(level: str) -> None:
    """Set the service's log level (WECOM_LOG_LEVEL); give its logger a handler unless the
    host (gunicorn through :class:`app.web.serving.GunicornLogger`, pytest, an embedding app)
    set one up."""
    logger = logging.getLogger(SERVICE_LOGGER)
    logger.setLevel(level)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter())
    logger.addHandler(handler)
