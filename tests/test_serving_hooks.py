"""What gunicorn's master does for the service: its default timeout, releasing a dead worker's
leases (child_exit)."""

from __future__ import annotations

import logging

import pytest

from app.infra.store import SqliteStore
from app.jobs.leases import owner_prefix
from app.web.serving import default_timeout, release_worker_leases
from tests.conftest import BASE_CONFIG

KEYS = {k: v for k, v in BASE_CONFIG.items() if k.startswith("WECOM_")}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, 15),  # half the default 30 s lease
        ({"WECOM_LEASE_SECONDS": "120"}, 30),
        ({"WECOM_LEASE_SECONDS": "3"}, 10),
        ({"GUNICORN_TIMEOUT": "7"}, 7),
    ],
)
def test_default_timeout_kills_a_stuck_worker_before_its_leases_run_out(extra, expected):
    assert default_timeout(KEYS | extra) == expected


def test_child_exit_releases_the_dead_workers_leases(tmp_path, monkeypatch, caplog):
    path = tmp_path / "state.db"
    for name, value in (KEYS | {"WECOM_STORE": f"sqlite:///{path}"}).items():
        monkeypatch.setenv(name, value)
    store = SqliteStore(path)
    try:
        store.claim_job("dead", "app", "{}", owner_prefix(4242) + "abcd1234", 2e9, 1e9)
        store.claim_job("alive", "app", "{}", owner_prefix(4243) + "abcd1234", 2e9, 1e9)
        with caplog.at_level(logging.WARNING, logger="app.serving"):
            assert release_worker_leases(4242) == 1
        assert store.get_job("dead").lease_until < 2e9
        assert store.get_job("alive").lease_until == 2e9
        assert "worker 4242 exited with 1 jobs in hand" in caplog.text
    finally:
        store.close()


def test_child_exit_survives_a_store_it_cannot_open(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for name, value in (KEYS | {"WECOM_STORE": f"sqlite:///{blocker}/x/state.db"}).items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.ERROR, logger="app.serving"):
        assert release_worker_leases(4242) == 0
    assert "could not release the leases of worker 4242" in caplog.text
