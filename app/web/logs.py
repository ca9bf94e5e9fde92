"""One log format for the service's lines and gunicorn's, set up once per process.

``WECOM_LOG_FORMAT=text`` (the default) writes ``time [pid] LEVEL logger: message``;
``WECOM_LOG_FORMAT=json`` writes each line as one JSON object (python-json-logger) with the same
facts as fields: ``time``, ``pid``, ``level``, ``logger``, ``message``, plus whatever a line
passes in ``extra`` (the callback line's ``endpoint``, ``msgtype``, ``outcome``, ``ms`` …) and, for
gunicorn's access lines, ``method``, ``path``, ``status`` and ``ms``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
SERVICE_LOGGER = "app"
JSON_FIELDS = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"asctime": "time", "process": "pid", "levelname": "level", "name": "logger"}
#: gunicorn access-log atoms copied into fields of a JSON access line (atom -> field).
ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "M": "ms", "h": "remote"}


class ServiceJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with the fields of gunicorn's access lines spelled out."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            for atom, field in ACCESS_FIELDS.items():
                try:
                    log_data[field] = record.args[atom]
                except (KeyError, TypeError):
                    continue


def formatter(log_format: str = "text") -> logging.Formatter:
    """The formatter for ``log_format`` ("text" or "json")."""
    if log_format == "json":
        return ServiceJsonFormatter(
            JSON_FIELDS,
            datefmt=DATE_FORMAT,
            rename_fields=JSON_RENAMES,
            json_ensure_ascii=False,
        )
    return logging.Formatter(LOG_FORMAT, DATE_FORMAT)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Set the service's log level (WECOM_LOG_LEVEL); give its logger a handler in the chosen
    format (WECOM_LOG_FORMAT) unless the host (gunicorn through
    :class:`app.web.serving.GunicornLogger`, pytest, an embedding app) set one up."""
    logger = logging.getLogger(SERVICE_LOGGER)
    logger.setLevel(level)
    # Neither format shows the thread: without this every record looks it up, and under gevent
    # that makes a dummy Thread object for each greenlet that logs (a callback line costs a
    # quarter more). The process id stays.
    logging.logThreads = False
    logging.logMultiprocessing = False
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logger.addHandler(handler)
