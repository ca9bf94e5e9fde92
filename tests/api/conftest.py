"""Fixtures: a fake WeCom on loopback, a store, and clients wired to them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import RetryPolicy, WeComClient
from app.infra.api.tokens import TokenStore
from app.infra.store.memory import MemoryStore

CORP_ID = "wwtestcorp0000001"
APP_SECRET = "app-secret-for-tests"
KF_SECRET = "kf-secret-for-tests"
AGENT_ID = 1000002
KF_A = "wkTESTKF0000A"
KF_B = "wkTESTKF0000B"

#: Quick retries so fault tests stay fast; the bounds are what matters.
FAST_RETRY = RetryPolicy(attempts=4, max_time=10.0, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(
        corp_id=CORP_ID,
        secret=APP_SECRET,
        agent_id=AGENT_ID,
        kf_secret=KF_SECRET,
        kf_accounts=[KF_A, KF_B],
    ) as server:
        yield server


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    yield memory
    memory.close()


def make_client(fake: FakeWeCom, store: TokenStore, **overrides: Any) -> WeComClient:
    options: dict[str, Any] = {
        "agent_id": AGENT_ID,
        "api_base": fake.base_url,
        "timeout": (2.0, 5.0),
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    secret = str(options.pop("secret", APP_SECRET))
    corp_id = str(options.pop("corp_id", CORP_ID))
    return WeComClient(corp_id, secret, store, **options)


@pytest.fixture
def client(fake: FakeWeCom, store: MemoryStore) -> Iterator[WeComClient]:
    with make_client(fake, store) as c:
        yield c


@pytest.fixture
def kf_client(fake: FakeWeCom, store: MemoryStore) -> Iterator[WeComClient]:
    with make_client(fake, store, secret=KF_SECRET, agent_id=None) as c:
        yield c


def send_text(
    client: WeComClient, touser: str | Sequence[str], content: str, **extra: Any
) -> dict[str, Any]:
    """A text message through message/send (``touser`` joined with ``|``)."""
    users = touser if isinstance(touser, str) else "|".join(touser)
    payload = {"touser": users, "msgtype": "text", "text": {"content": content}, **extra}
    return client.send_message(payload)
