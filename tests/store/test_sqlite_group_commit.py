"""Group commit under gevent (app/infra/store/sqlite_batch.py): concurrent writes of one process
share transactions, each write stays atomic and isolated, and waiting for another process keeps
each caller's patience. Every scenario runs in a gevent-patched process of its own, on a real
SQLite file (tests/store/_group_commit_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.infra.store import SqliteStore
from tests.helpers import assert_script_prints_ok

from ._group_commit_scenarios import SCENARIOS, claim, commits, traced

RUN = (
    "from gevent import monkey\n"
    "monkey.patch_all()\n"
    "from tests.store._group_commit_scenarios import main\n"
    "main()\n"
)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_group_commit_under_gevent(scenario: str, tmp_path: Path) -> None:
    assert_script_prints_ok(RUN, scenario, str(tmp_path / "state.db"))


def test_without_gevent_each_write_has_its_own_transaction(tmp_path: Path) -> None:
    """This test process is not patched: threads keep one transaction per write."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        with traced(store) as statements:
            for n in range(5):
                assert claim(store, f"k{n}", "w") == (True, "w")
        assert commits(statements) == 5
        assert not any("SAVEPOINT" in sql for sql in statements)
    finally:
        store.close()
