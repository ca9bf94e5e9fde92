"""Group commit under gevent (app/infra/store/sqlite_batch.py): concurrent writes of one process
share transactions, each write stays atomic and isolated, and waiting for another process keeps
each caller's patience. Every scenario runs in a gevent-patched process of its own, on a real
SQLite file (tests/store/_group_commit_scenarios.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.infra.store import SqliteStore

from ._group_commit_scenarios import SCENARIOS, claim, commits, traced

ROOT = Path(__file__).resolve().parents[2]
RUN = (
    "from gevent import monkey\n"
    "monkey.patch_all()\n"
    "from tests.store._group_commit_scenarios import main\n"
    "main()\n"
)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_group_commit_under_gevent(scenario: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN, scenario, str(tmp_path / "state.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


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
