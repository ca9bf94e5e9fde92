"""Shared fixtures: an app built by the factory, its test client, and a WeCom that signs and
encrypts callbacks for it (the simulator, talking through the test client)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import create_app
from app.devtools.simulator import Simulator, Transport
from tests.helpers import GATES_VARIABLE, Gates

pytest_plugins = ["tests.servers"]  # real redis-server for the Redis store tests

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

BASE_CONFIG = {
    "TESTING": True,
    "WECOM_TOKEN": TOKEN,
    "WECOM_AES_KEY": AES_KEY,
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_STORE": "memory://",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the machine running it."""
    for name in list(os.environ):
        if name.startswith("WECOM_") or name in ("T_TOKEN", "C_TOKEN"):
            monkeypatch.delenv(name)


@pytest.fixture
def gates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gates:
    """Gates for "hold NAME" handlers (tests/handlers_slow.py) run in this process."""
    folder = tmp_path / "gates"
    monkeypatch.setenv(GATES_VARIABLE, str(folder))
    return Gates(folder)


@pytest.fixture
def app_config() -> dict:
    return dict(BASE_CONFIG)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    app.extensions["wecom"].stop_background()


@pytest.fixture
def client(app):
    return app.test_client()


def client_transport(client) -> Transport:
    def send(method: str, url: str, query: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        response = client.open(
            url, method=method, query_string=query, data=body, content_type="text/xml"
        )
        return response.status_code, response.get_data()

    return send


@pytest.fixture
def wecom(client) -> Simulator:
    """WeCom itself, for the default endpoint at '/'."""
    return Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(client))
