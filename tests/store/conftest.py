"""The ``store`` fixture: each store test runs against memory://, SQLite and Redis (the Redis
case skips without redis-server). Modules about one store define their own ``store``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.infra.store import MemoryStore, SqliteStore, Store
from tests.servers import unique_prefix


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "memory":
        opened = MemoryStore()
    elif request.param == "sqlite":
        opened = SqliteStore(tmp_path / "s" / "store.db")
    else:
        from app.infra.store.redis import RedisStore

        server = request.getfixturevalue("redis_server")
        opened = RedisStore.from_url(server.url, prefix=unique_prefix())
    yield opened
    opened.close()
