"""Fixtures for 微信客服: the fake WeCom API in this process, an app with a kf endpoint pointed at
it, and customers who write to a kf account and ring the service's doorbell."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from app import create_app
from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator
from app.infra.store import Store
from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport
from tests.settled import settled

KF_SECRET = "kf-secret-for-tests"
APP_SECRET = "app-secret-for-tests"
KF_A = "wkACCOUNT0001"
KF_B = "wkACCOUNT0002"

T = TypeVar("T")


@pytest.fixture
def fake():
    with FakeWeCom(
        corp_id=CORP_ID, secret=APP_SECRET, kf_secret=KF_SECRET, kf_accounts=[KF_A, KF_B]
    ) as server:
        yield server


@pytest.fixture
def app_config(fake) -> dict:
    return {
        "TESTING": True,
        "WECOM_KF_TOKEN": TOKEN,
        "WECOM_KF_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_KF_SECRET": KF_SECRET,
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": "memory://",
    }


class Customers:
    """WeChat customers writing to kf accounts of the fake, and WeCom ringing the doorbell of the
    app whose store is ``store``."""

    def __init__(self, fake: FakeWeCom, simulator: Simulator, store: Store) -> None:
        self.fake = fake
        self.simulator = simulator
        self.store = store

    def settled(self) -> bool:
        """Nothing more will be pulled or sent until the next doorbell (see tests.settled)."""
        return settled(self.store, [KF_A, KF_B])

    def write(self, open_kfid: str, *messages: dict[str, Any], ring: bool = True) -> dict:
        queued = self.fake.enqueue_kf(open_kfid=open_kfid, messages=list(messages))
        if ring:
            self.ring(queued["token"], open_kfid)
        return queued

    def ring(self, token: str, open_kfid: str) -> None:
        result = self.simulator.send_kf_callback(token, open_kfid)
        assert (result.status, result.body) == (200, b"")

    def answers(self, user: str | None = None) -> list[dict[str, Any]]:
        return [
            item
            for item in self.fake.sent()  # in the order the fake accepted them
            if item["api"].startswith("kf/") and (user is None or item["touser"] == user)
        ]

    def texts(self, user: str | None = None) -> list[str]:
        return [
            item["body"]["text"]["content"] if item["msgtype"] == "text" else item["msgtype"]
            for item in self.answers(user)
        ]


@pytest.fixture
def customers(app, client, fake) -> Customers:
    simulator = Simulator("/kf", TOKEN, AES_KEY, CORP_ID, transport=client_transport(client))
    return Customers(fake, simulator, app.extensions["wecom"].store)


@pytest.fixture
def customers_of(fake) -> Iterator[Callable[..., Customers]]:
    """Customers of another app built from ``config`` (its doorbell at ``path``), for tests that
    need settings of their own or several apps; their background work stops after the test."""
    apps = []

    def make(config: dict[str, Any], path: str = "/kf") -> Customers:
        app = create_app(config)
        apps.append(app)
        transport = client_transport(app.test_client())
        simulator = Simulator(path, TOKEN, AES_KEY, CORP_ID, transport=transport)
        return Customers(fake, simulator, app.extensions["wecom"].store)

    yield make
    for app in apps:
        app.extensions["wecom"].stop_background()
