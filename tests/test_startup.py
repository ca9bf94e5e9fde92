"""Start-up as a newcomer meets it: clear one-line errors, a summary printed once, quiet CLI
commands, and the development profile on loopback only."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import SettingError, create_app, load_settings
from app.web.serving import default_bind
from app.web.startup import started_by_flask_run, summary
from tests.conftest import AES_KEY, BASE_CONFIG

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \[\d+\] [A-Z]+ [\w.]+: ")


def run_app(*args: str, env: dict[str, str] | None = None, python: str = sys.executable):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    return subprocess.run(
        [python, *args],
        cwd=PROJECT_ROOT,
        env=clean | {"WECOM_STORE": "memory://"} | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_character_in_the_aes_key_is_named_with_its_position():
    key = AES_KEY[:16] + "-" + AES_KEY[17:]
    with pytest.raises(SettingError) as info:
        load_settings(BASE_CONFIG | {"WECOM_AES_KEY": key})
    assert info.value.setting == "WECOM_AES_KEY"
    assert "character 17 ('-') is not a letter or digit" in str(info.value)


def test_a_wrong_length_aes_key_says_how_long_it_is():
    with pytest.raises(SettingError, match="is 42 characters long; an EncodingAESKey has exactly"):
        load_settings(BASE_CONFIG | {"WECOM_AES_KEY": AES_KEY[:-1]})


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ("no_such_package.handlers", "no module named 'no_such_package.handlers'"),
        ("tests.conftest", "defines neither `router = Router()` nor `register(router)`"),
    ],
)
def test_a_bad_handlers_module_names_the_setting(module, problem):
    with pytest.raises(SettingError) as info:
        create_app(BASE_CONFIG | {"WECOM_HANDLERS": module})
    assert info.value.setting == "WECOM_HANDLERS"
    assert problem in str(info.value)


def test_a_handlers_module_that_fails_to_import_says_where(tmp_path, monkeypatch):
    (tmp_path / "broken_handlers.py").write_text("x = 1\nraise RuntimeError('no database')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SettingError) as info:
        create_app(BASE_CONFIG | {"WECOM_HANDLERS": "broken_handlers"})
    message = str(info.value)
    assert message.startswith("WECOM_HANDLERS: importing 'broken_handlers' failed (")
    assert "broken_handlers.py:2): RuntimeError: no database" in message
    assert "\n" not in message


def test_check_prints_one_line_and_exits_2_for_a_bad_handlers_module():
    result = run_app("-m", "app", "--check", env={"WECOM_HANDLERS": "no_such_module"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["error: WECOM_HANDLERS: no module named 'no_such_module'"]


def test_check_logs_the_summary_in_the_service_format():
    result = run_app("-m", "app", "--check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"development_profile": True}
    lines = result.stderr.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    assert sum("endpoint app (app) at /" in line for line in lines) == 1
    assert any("DEVELOPMENT PROFILE" in line for line in lines)


def test_flask_commands_print_no_start_up_lines():
    result = run_app("-m", "flask", "--app", "wsgi", "simulate", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Act as WeCom" in result.stdout


def test_web_py_works_with_an_interpreter_lacking_the_packages():
    """The guide's `python web.py …` with a bare python3: it continues in the project's .venv."""
    bare = Path(sys.base_prefix) / "bin" / "python3"
    probe = subprocess.run([str(bare), "-c", "import Crypto, flask, gevent"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"{bare} has the packages itself; nothing to prove")
    result = run_app("web.py", "--check", python=str(bare))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"development_profile": True}


def test_summary_names_what_cannot_work():
    settings = load_settings(BASE_CONFIG)
    lines = summary(settings)
    assert (logging.INFO, "endpoint app (app) at /, handlers app.handlers.demo") in lines
    warnings = [line for level, line in lines if level == logging.WARNING]
    assert any("WECOM_SECRET and WECOM_AGENT_ID are not both set" in line for line in warnings)
    assert not any("DEVELOPMENT" in line for line in warnings)


def test_summary_shows_the_forward_url_without_credentials_or_query():
    settings = load_settings(
        BASE_CONFIG | {"WECOM_FORWARD_URL": "https://user:secret@backend.example:8443/wecom?key=k1"}
    )
    text = "\n".join(line for _, line in summary(settings))
    assert "https://backend.example:8443/wecom" in text
    assert "secret" not in text and "k1" not in text and "user" not in text


@pytest.mark.parametrize(
    ("development", "environ", "bind"),
    [
        (True, {}, "127.0.0.1:8000"),
        (True, {"PORT": "9000"}, "127.0.0.1:9000"),
        (False, {"PORT": "9000"}, "0.0.0.0:9000"),
        (True, {"GUNICORN_BIND": "0.0.0.0:7000"}, "0.0.0.0:7000"),
        (False, {"GUNICORN_BIND": "unix:/run/wecom.sock"}, "unix:/run/wecom.sock"),
    ],
)
def test_the_development_profile_listens_on_loopback_unless_told(development, environ, bind):
    assert default_bind(development, environ) == bind


@pytest.mark.parametrize(
    ("argv", "serving"),
    [
        (["/venv/bin/flask", "--app", "wsgi", "run", "--port", "5000"], True),
        (["/usr/lib/python3/site-packages/flask/__main__.py", "run"], True),
        (["/venv/bin/flask", "--app", "wsgi", "simulate", "text", "run"], False),
        (["/venv/bin/flask", "-A", "wsgi", "--debug", "run"], True),
        (["/venv/bin/flask", "--app", "wsgi", "deliveries", "list"], False),
        (["/venv/bin/gunicorn", "wsgi:app"], False),
    ],
)
def test_which_process_serves_flask_run(argv, serving):
    assert started_by_flask_run(argv) is serving
