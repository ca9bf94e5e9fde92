"""Start-up of the real server: one line for a bad setting, one summary for many workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import PROJECT_ROOT, LiveService

pytestmark = pytest.mark.e2e

KEYS = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \[\d+\] [A-Z]+ [\w.]+: ")


def gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "GUNICORN_"))}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=clean | {"WECOM_STORE": "memory://", "GUNICORN_BIND": "127.0.0.1:0"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        (
            {"WECOM_AES_KEY": AES_KEY[:42]},
            "error: WECOM_AES_KEY: is 42 characters long; an EncodingAESKey has exactly 43",
        ),
        (
            {"WECOM_HANDLERS": "nobody.wrote.this"},
            "error: WECOM_HANDLERS: no module named 'nobody.wrote.this'",
        ),
    ],
)
def test_gunicorn_with_a_bad_setting_prints_one_line_and_does_not_fork(bad, line):
    result = gunicorn(KEYS | bad)
    assert result.returncode == 2
    assert (result.stdout + result.stderr).splitlines() == [line]


def test_the_summary_is_printed_once_for_four_workers_in_one_format(tmp_path):
    service = LiveService(KEYS | {"WECOM_STORE": f"sqlite:///{tmp_path / 's.db'}"}, workers=4)
    with service:
        lines = service.output().splitlines()
    assert sum("Booting worker" in line for line in lines) == 4
    assert sum("endpoint app (app) at /" in line for line in lines) == 1
    assert all(LOG_LINE.match(line) for line in lines), lines


def test_the_development_profile_listens_on_loopback_by_default(tmp_path):
    service = LiveService(
        {"WECOM_STORE": f"sqlite:///{tmp_path / 'dev.db'}"},
        command=lambda port: [sys.executable, "-m", "app", f"-p={port}", "-w", "1"],
    )
    with service:
        output = service.output()
    assert f"Listening at: http://127.0.0.1:{service.port}" in output
    assert "DEVELOPMENT PROFILE" in output


def test_flask_run_prints_the_summary(tmp_path):
    service = LiveService(
        KEYS | {"WECOM_STORE": f"sqlite:///{tmp_path / 'run.db'}"},
        command=lambda port: [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "run",
            "-p",
            str(port),
        ],
    )
    with service:
        output = service.output()
    assert sum("endpoint app (app) at /" in line for line in output.splitlines()) == 1
