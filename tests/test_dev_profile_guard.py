"""The development profile (public test keys) never starts beside real secrets or a backend."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app import SettingError, create_app, load_settings
from tests.conftest import BASE_CONFIG
from tests.e2e.live import PROJECT_ROOT

NO_KEYS = {"WECOM_STORE": "memory://"}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"WECOM_SECRET": "s"}, "WECOM_SECRET"),
        ({"WECOM_SECRET": "s", "WECOM_AGENT_ID": "1000002"}, "WECOM_SECRET, WECOM_AGENT_ID"),
        ({"WECOM_AGENT_ID": "1000002"}, "WECOM_AGENT_ID"),
        ({"WECOM_FORWARD_URL": "http://127.0.0.1:9/x"}, "WECOM_FORWARD_URL"),
        ({"WECOM_KF_SECRET": "s"}, "WECOM_KF_SECRET"),
    ],
)
def test_real_settings_without_real_keys_are_refused(extra, named):
    with pytest.raises(SettingError) as info:
        create_app(NO_KEYS | extra)
    assert info.value.setting == named
    assert "development profile" in str(info.value)


def test_forced_profile_beside_real_keys_is_refused():
    with pytest.raises(SettingError) as info:
        load_settings(BASE_CONFIG | {"WECOM_DEV_PROFILE": "1"})
    assert info.value.setting == "WECOM_DEV_PROFILE"
    assert "WECOM_TOKEN" in str(info.value)


def test_profile_alone_still_starts():
    assert load_settings(NO_KEYS).development_profile
    assert load_settings(NO_KEYS | {"WECOM_DEV_PROFILE": "1"}).development_profile


def test_start_up_check_prints_one_line_naming_the_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env |= {"WECOM_SECRET": "real-secret", "WECOM_STORE": "memory://"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "--check"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: WECOM_SECRET:"), result.stderr
    assert "real-secret" not in result.stderr
