"""deploy/prometheus.yml and deploy/alerts.yml, checked by promtool (Debian's prometheus package)
when it is installed; the alerts' unit tests (deploy/alerts_test.yml) run through it too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_alert_rules_are_valid_and_fire_as_their_tests_say():
    assert "6 rules found" in promtool("check", "rules", str(DEPLOY / "alerts.yml")).stdout
    promtool("test", "rules", str(DEPLOY / "alerts_test.yml"))


def test_scrape_config_is_valid(tmp_path):
    # promtool also checks that the token file exists: point the copy at one.
    token = tmp_path / "wecom-admin-token"
    token.write_text("a-token-for-the-check\n")
    config = (DEPLOY / "prometheus.yml").read_text()
    assert "/etc/prometheus/wecom-admin-token" in config
    copy = tmp_path / "prometheus.yml"
    copy.write_text(config.replace("/etc/prometheus/wecom-admin-token", str(token)))
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    promtool("check", "config", str(copy))
