"""WECOM_LOG_FORMAT: text by default, one JSON object per line with json, gunicorn's included."""

from __future__ import annotations

import json
import logging

import pytest
from gunicorn.config import Config

from app import SettingError, load_settings
from app.web.logs import ServiceJsonFormatter, formatter
from app.web.serving import GunicornLogger, log_format_from_environment
from tests.conftest import BASE_CONFIG


def record(name: str, msg: str, args, **extra) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_json_lines_carry_the_callback_fields():
    line = formatter("json").format(
        record(
            "app.callbacks",
            "callback %s %s",
            ("app", "text"),
            endpoint="app",
            msgtype="text",
            outcome="passive",
            ms=2.5,
        )
    )
    data = json.loads(line)
    assert data["message"] == "callback app text"
    assert (data["logger"], data["level"], data["outcome"], data["ms"]) == (
        "app.callbacks",
        "INFO",
        "passive",
        2.5,
    )
    assert isinstance(data["pid"], int) and data["time"]
    assert "\n" not in line


def test_gunicorn_access_lines_in_json_name_their_parts():
    atoms = {"h": "10.0.0.1", "r": "POST /?x=1 HTTP/1.1", "m": "POST", "U": "/", "s": "200"}
    atoms["M"] = 3
    data = json.loads(formatter("json").format(record("gunicorn.access", "%(h)s %(r)s", atoms)))
    assert data["message"] == "10.0.0.1 POST /?x=1 HTTP/1.1"
    assert (data["method"], data["path"], data["status"], data["ms"]) == ("POST", "/", "200", 3)


@pytest.fixture
def restored_loggers():
    """GunicornLogger rewires the service's logger and gunicorn's: put them back afterwards."""
    names = ("app", "gunicorn.error", "gunicorn.access")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names
    }
    yield
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.propagate = propagate


@pytest.mark.parametrize("value,expected", [("json", True), ("JSON", True), ("text", False)])
def test_gunicorn_logger_follows_the_setting(monkeypatch, restored_loggers, value, expected):
    monkeypatch.setenv("WECOM_LOG_FORMAT", value)
    config = Config()
    config.set("accesslog", "-")
    logger = GunicornLogger(config)
    handlers = [
        h
        for h in (*logger.error_log.handlers, *logger.access_log.handlers)
        if getattr(h, "_gunicorn", False)
    ]
    assert len(handlers) == 2
    assert all(isinstance(h.formatter, ServiceJsonFormatter) == expected for h in handlers)
    assert log_format_from_environment() == ("json" if expected else "text")


def test_a_bad_log_format_stops_start_up_naming_it():
    with pytest.raises(SettingError) as info:
        load_settings(BASE_CONFIG | {"WECOM_LOG_FORMAT": "xml"})
    assert info.value.setting == "WECOM_LOG_FORMAT"
    assert load_settings(BASE_CONFIG).log_format == "text"
