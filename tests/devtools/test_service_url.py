"""``flask simulate`` finds the service the way the service chose its address: --url, then
WECOM_SIMULATE_URL, GUNICORN_BIND, PORT, FLASK_RUN_PORT, then :8000."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.devtools.service_url import DEFAULT_URL, resolve_service_url
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.devtools.conftest import served

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {}, (DEFAULT_URL, "default")),
        ("http://10.0.0.5:81/", {"PORT": "9"}, ("http://10.0.0.5:81", "--url")),
        (None, {"WECOM_SIMULATE_URL": "https://w.example.com/base/", "PORT": "9"},
         ("https://w.example.com/base", "WECOM_SIMULATE_URL")),
        (None, {"GUNICORN_BIND": "0.0.0.0:9001", "PORT": "9"},
         ("http://127.0.0.1:9001", "GUNICORN_BIND")),
        (None, {"GUNICORN_BIND": "[::]:9002"}, ("http://[::1]:9002", "GUNICORN_BIND")),
        (None, {"GUNICORN_BIND": "localhost:9003"}, ("http://localhost:9003", "GUNICORN_BIND")),
        (None, {"GUNICORN_BIND": ":9004"}, ("http://127.0.0.1:9004", "GUNICORN_BIND")),
        (None, {"GUNICORN_BIND": "unix:/run/wecom.sock", "PORT": "9005"},
         ("http://127.0.0.1:9005", "PORT")),
        (None, {"GUNICORN_BIND": "127.0.0.1", "PORT": "9006"}, ("http://127.0.0.1:9006", "PORT")),
        (None, {"PORT": "9007", "FLASK_RUN_PORT": "5000"}, ("http://127.0.0.1:9007", "PORT")),
        (None, {"FLASK_RUN_PORT": "5001"}, ("http://127.0.0.1:5001", "FLASK_RUN_PORT")),
        (None, {"FLASK_RUN_PORT": "5002", "FLASK_RUN_HOST": "0.0.0.0"},
         ("http://127.0.0.1:5002", "FLASK_RUN_PORT")),
        (None, {"FLASK_RUN_PORT": "5003", "FLASK_RUN_HOST": "::1"},
         ("http://[::1]:5003", "FLASK_RUN_PORT")),
    ],
)  # fmt: skip
def test_resolution_order(option, environ, expected):
    target = resolve_service_url(option, environ)
    assert (target.url, target.source) == expected


@pytest.mark.parametrize(
    ("option", "environ", "named"),
    [
        ("127.0.0.1:8000", {}, "--url"),
        (None, {"WECOM_SIMULATE_URL": "ftp://host/"}, "WECOM_SIMULATE_URL"),
        (None, {"GUNICORN_BIND": "127.0.0.1:http"}, "GUNICORN_BIND"),
        (None, {"PORT": "eighty"}, "PORT"),
        (None, {"PORT": "70000"}, "PORT"),
        (None, {"FLASK_RUN_PORT": "0"}, "FLASK_RUN_PORT"),
    ],
)
def test_a_bad_value_names_its_setting(option, environ, named):
    with pytest.raises(ValueError, match=f"^{named}: "):
        resolve_service_url(option, environ)


def verify(app, args: list[str] | None = None, **env: str):
    return app.test_cli_runner().invoke(args=["simulate", *(args or []), "verify"], env=env)


@pytest.mark.parametrize(
    ("source", "winning", "losing"),
    [
        ("--url", {}, {"WECOM_SIMULATE_URL": "{dead}", "PORT": "{dead_port}"}),
        ("WECOM_SIMULATE_URL", {"WECOM_SIMULATE_URL": "{live}"},
         {"GUNICORN_BIND": "127.0.0.1:{dead_port}", "PORT": "{dead_port}"}),
        ("GUNICORN_BIND", {"GUNICORN_BIND": "0.0.0.0:{live_port}"},
         {"PORT": "{dead_port}", "FLASK_RUN_PORT": "{dead_port}"}),
        ("PORT", {"PORT": "{live_port}"}, {"FLASK_RUN_PORT": "{dead_port}"}),
        ("FLASK_RUN_PORT", {"FLASK_RUN_PORT": "{live_port}"}, {}),
    ],
)  # fmt: skip
def test_each_source_finds_a_real_service_over_the_ones_after_it(
    app, dead_port, source, winning, losing
):
    with served(app) as port:
        values = {
            "live": f"http://127.0.0.1:{port}",
            "live_port": str(port),
            "dead": f"http://127.0.0.1:{dead_port}",
            "dead_port": str(dead_port),
        }
        env = {k: v.format(**values) for k, v in (losing | winning).items()}
        args = ["--url", values["live"]] if source == "--url" else []
        result = verify(app, args, **env)
    assert result.exit_code == 0, result.output
    assert "URL verified" in result.output


def test_an_unreachable_service_is_one_line_naming_where_and_why(app, dead_port):
    result = verify(app, PORT=str(dead_port))
    assert result.exit_code == 1
    assert f"cannot reach the service at http://127.0.0.1:{dead_port} (from PORT)" in result.output
    assert "Connection refused" in result.output
    assert "msg_signature" not in result.output and "Traceback" not in result.output


def test_a_bad_port_is_a_usage_error(app):
    result = verify(app, PORT="eighty")
    assert result.exit_code == 2
    assert "PORT: must name a port" in result.output


def test_the_help_documents_the_order(app):
    result = app.test_cli_runner().invoke(args=["simulate", "--help"])
    assert result.exit_code == 0
    order = ["--url", "WECOM_SIMULATE_URL", "GUNICORN_BIND", "PORT", "FLASK_RUN_PORT", "8000"]
    body = result.output.split("Options:")[0]
    positions = [body.index(name) for name in order]
    assert positions == sorted(positions)


def test_flask_simulate_in_its_own_process_follows_port(app):
    """The real `flask` entry point, in a shell where only PORT says where the service is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env |= {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID,
            "WECOM_STORE": "memory://", "WECOM_LOG_LEVEL": "WARNING"}  # fmt: skip
    with served(app) as port:
        env["PORT"] = str(port)
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "text", "你好"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "你好,这是测试机器人"
