"""``flask fake-wecom``: the fake WeCom API for a developer, keyed from the configuration and
bound to loopback only; ``python -m app.devtools.fakewecom`` keeps the same rule."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app import create_app
from app.devtools.fakewecom import FakeControl, FakeWeCom
from app.web.cli.fake_wecom import configured_keys
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN
from tests.devtools.conftest import first_output, stop

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ENV = {
    "WECOM_TOKEN": TOKEN,
    "WECOM_AES_KEY": AES_KEY,
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_SECRET": "app-secret-from-env",
    "WECOM_AGENT_ID": "1000017",
    "WECOM_KF_TOKEN": TOKEN,
    "WECOM_KF_AES_KEY": AES_KEY,
    "WECOM_KF_SECRET": "kf-secret-from-env",
    "WECOM_STORE": "memory://",
    "WECOM_LOG_LEVEL": "WARNING",
}


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_serves_gettoken_on_loopback_with_the_configured_keys():
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "fake-wecom", "--port", "0",
         "--max-lifetime", "120"],
        cwd=ROOT, env=env | SERVICE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        printed = first_output(proc)
        base_url = printed.splitlines()[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/cgi-bin/")
        port = int(base_url.split(":")[2].split("/")[0])
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        control = FakeControl(base_url)
        control.wait_ready(10)

        def gettoken(secret: str) -> dict:
            params = {"corpid": CORP_ID, "corpsecret": secret}
            return requests.get(base_url + "gettoken", params=params, timeout=5).json()

        app_token = gettoken("app-secret-from-env")
        assert app_token["errcode"] == 0 and app_token["expires_in"] == 7200
        assert gettoken("kf-secret-from-env")["errcode"] == 0
        assert gettoken("fake-app-secret")["errcode"] == 40001  # the default is not used
        sent = requests.post(
            base_url + "message/send",
            params={"access_token": app_token["access_token"]},
            data=json.dumps({"touser": "zhangsan", "agentid": 1000017, "msgtype": "text",
                             "text": {"content": "hi"}}),
            timeout=5,
        ).json()  # fmt: skip
        assert sent["errcode"] == 0  # the configured agent id belongs to the configured secret
        assert control.stats()["gettoken_calls"] == 3
    finally:
        code, rest, stderr = stop(proc)
    assert code == 0, stderr
    stdout = printed + rest
    assert f"WECOM_API_BASE={base_url}" in stdout  # what to start the service with
    assert "from WECOM_SECRET" in stdout and "from WECOM_KF_SECRET" in stdout
    assert "secret-from-env" not in stdout + stderr  # secrets are named, never printed


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_refuses_a_non_loopback_host(app, host):
    result = app.test_cli_runner().invoke(args=["fake-wecom", "--host", host, "--port", "0"])
    assert result.exit_code == 2
    assert "loopback interface only" in result.output and repr(host) in result.output


def test_the_module_and_the_class_refuse_it_too():
    with pytest.raises(ValueError, match="loopback"):
        FakeWeCom(host="0.0.0.0")
    refused = subprocess.run(
        [sys.executable, "-m", "app.devtools.fakewecom", "--host", "0.0.0.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2 and "--host" in refused.stderr


def test_a_taken_port_is_one_clear_error(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = app.test_cli_runner().invoke(args=["fake-wecom", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_keys_come_from_every_configured_endpoint():
    extra = [{"name": "sales", "token": TOKEN, "aes_key": AES_KEY, "secret": "sales-secret",
              "agent_id": "1000020"}]  # fmt: skip
    app = create_app(
        BASE_CONFIG
        | {
            "WECOM_SECRET": "main-secret",
            "WECOM_AGENT_ID": "1000002",
            "WECOM_KF_TOKEN": TOKEN,
            "WECOM_KF_AES_KEY": AES_KEY,
            "WECOM_ENDPOINTS": json.dumps(extra),
        }
    )
    try:
        with app.app_context():
            keys = configured_keys()
    finally:
        app.extensions["wecom"].stop_background()
    assert (keys.corp_id, keys.secret, keys.agent_id) == (CORP_ID, "main-secret", 1000002)
    assert keys.kf_secret == "main-secret"  # no WECOM_KF_SECRET: the app secret serves kf
    assert keys.other_apps == (("sales-secret", 1000020),)


def test_without_secrets_configured_the_keys_are_empty(app):
    with app.app_context():
        keys = configured_keys()
    assert (keys.corp_id, keys.secret, keys.agent_id, keys.kf_secret) == (CORP_ID, "", None, "")
