"""deploy/nginx.conf, run by the real nginx (TLS on a throwaway certificate) in front of a real
gunicorn: WeCom's URL check and a signed callback go through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from app.devtools.simulator import Simulator, requests_transport
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.servers import NginxServer

pytestmark = pytest.mark.e2e

KEYS = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}


def test_callbacks_pass_through_the_shipped_nginx_config(tmp_path: Path) -> None:
    with LiveService(KEYS | {"WECOM_STORE": f"sqlite:///{tmp_path / 'state.db'}"}) as service:
        nginx = NginxServer(tmp_path / "nginx", [service.port])
        checked = nginx.check_config()
        assert checked.returncode == 0, checked.stderr
        assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr
        nginx.start()
        try:
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            session.verify = str(nginx.certificate)  # TLS is really checked
            wecom = Simulator(
                nginx.url + "/",
                TOKEN,
                AES_KEY,
                CORP_ID,
                transport=requests_transport(timeout=10, session=session),
            )
            assert wecom.verify_url()
            result = wecom.send_text("你好")
            assert result.status == 200
            assert result.reply is not None
            assert result.reply["Content"] == "你好,这是测试机器人"
            health = session.get(nginx.url + "/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok"

            plain = requests.get(nginx.http_url + "/x?y=1", allow_redirects=False, timeout=10)
            assert plain.status_code == 301
            assert plain.headers["Location"] == "https://127.0.0.1/x?y=1"  # $host: no port
        finally:
            nginx.stop()
    assert "[error]" not in nginx.log() and "[emerg]" not in nginx.log()
