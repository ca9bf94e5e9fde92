"""End to end: the real gunicorn with gevent workers, driven by the simulator as WeCom would."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.devtools.simulator import Simulator
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import PROJECT_ROOT, LiveService

pytestmark = pytest.mark.e2e

KEYS = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "state.db"
    with LiveService(KEYS | {"WECOM_STORE": f"sqlite:///{store}"}) as live:
        yield live


def simulate(live: LiveService, *args: str, env: dict[str, str] | None = None):
    environment = {k: v for k, v in live.env.items() if not k.startswith("WECOM_")}
    environment.update(env if env is not None else KEYS)
    environment["WECOM_STORE"] = "memory://"
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "--url", live.url, *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runs_gevent_workers(service):
    assert "Using worker: app.web.gunicorn_worker.GracefulGeventWorker" in service.output()
    assert len(service.worker_pids()) == 2


def test_simulator_verifies_url_and_gets_the_demo_answer(service):
    verified = simulate(service, "verify")
    assert verified.returncode == 0, verified.stderr
    assert "URL verified" in verified.stdout
    answered = simulate(service, "text", "你好")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == "你好,这是测试机器人"


def test_concurrent_callbacks_all_answered(service):
    wecom = Simulator(service.url + "/", TOKEN, AES_KEY, CORP_ID)

    def one(index: int) -> str:
        return wecom.send_text(f"消息 {index}").reply["Content"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(100)))
    assert answers == [f"消息 {index}" for index in range(100)]


def test_bad_input_never_500(service):
    import requests

    for query, body in [
        ({}, b""),
        ({"msg_signature": "x", "timestamp": "1", "nonce": "2"}, b"<xml>"),
        ({"msg_signature": "x", "timestamp": "1", "nonce": "2"}, b"\x00" * 100),
        ({"msg_signature": "x", "timestamp": "1", "nonce": "2"}, b"a" * (300 * 1024)),
    ]:
        response = requests.post(service.url + "/", params=query, data=body, timeout=10)
        assert 400 <= response.status_code < 500, (query, body[:20], response.status_code)


def test_guide_command_line_and_development_profile(tmp_path):
    """`python -m app -p=PORT` with the guide's flags, then with nothing configured at all."""
    guide = LiveService(
        {"WECOM_STORE": f"sqlite:///{tmp_path / 'a.db'}"},
        command=lambda port: [
            sys.executable, "-m", "app",
            f"-p={port}", f"-t={TOKEN}", f"-c={CORP_ID}", f"-a={AES_KEY}",
            "--host", "127.0.0.1", "-w", "1",
        ],
    )  # fmt: skip
    with guide:
        answered = simulate(guide, "text", "你好")
        assert answered.stdout.strip() == "你好,这是测试机器人", answered.stderr

    dev = LiveService(
        {"WECOM_STORE": f"sqlite:///{tmp_path / 'b.db'}"},
        command=lambda port: [
            sys.executable, "-m", "app", f"-p={port}", "--host", "127.0.0.1", "-w", "1"
        ],
    )  # fmt: skip
    with dev:
        assert "DEVELOPMENT PROFILE" in dev.output()
        answered = simulate(dev, "text", "你好", env={})
        assert answered.stdout.strip() == "你好,这是测试机器人", answered.stderr


def test_flask_run_serves_the_same_app(tmp_path):
    dev = LiveService(
        {"WECOM_STORE": f"sqlite:///{tmp_path / 'c.db'}"} | KEYS,
        command=lambda port: [
            sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port)
        ],
    )  # fmt: skip
    with dev:
        answered = simulate(dev, "text", "你好")
        assert answered.stdout.strip() == "你好,这是测试机器人", answered.stderr


def test_gunicorn_accepts_the_config_file():
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "WECOM_STORE": "memory://"},
    )
    assert result.returncode == 0, result.stderr
