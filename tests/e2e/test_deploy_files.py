"""deploy/docker-compose.yml: valid Compose, and consistent with the nginx configuration and
the Redis settings that the e2e tests run (tests/e2e/test_multi_instance_live.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_file_follows_the_compose_specification() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema not installed (requirements-dev.txt)")
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_what_nginx_conf_expects() -> None:
    compose = (DEPLOY / "docker-compose.yml").read_text()
    nginx = (DEPLOY / "nginx.conf").read_text()
    upstream_ports = re.findall(r"^\s*server 127\.0\.0\.1:(\d+)\b", nginx, re.MULTILINE)
    app_ports = re.findall(r'^\s*PORT: "(\d+)"', compose, re.MULTILINE)
    assert upstream_ports and sorted(upstream_ports) == sorted(app_ports)
    assert 'network_mode: "service:nginx"' in compose  # so 127.0.0.1 is nginx's loopback
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in compose
    for path in re.findall(r"ssl_certificate(?:_key)?\s+(\S+);", nginx):
        assert f":{path}:ro" in compose
    assert re.search(r"--appendonly\s*\n\s*- \"yes\"", compose)
    assert "WECOM_STORE: redis://" in compose
