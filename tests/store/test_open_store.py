"""open_store: the WECOM_STORE URL forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.infra.store import ACCEPTED_FORMS, MemoryStore, SqliteStore, open_store


@pytest.mark.parametrize("url", ["memory://", "MEMORY://", "  memory://\n"])
def test_memory(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, MemoryStore)
    store.close()


def test_sqlite_relative_path_is_relative_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///instance/wecom-state.db")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == Path("instance/wecom-state.db")
        assert (tmp_path / "instance" / "wecom-state.db").is_file()
    finally:
        store.close()


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "state.db"
    store = open_store(f"sqlite:///{target}")  # target starts with "/": four slashes in all
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == target
        assert target.is_file()
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "memory",
        "memory://x",
        "/var/lib/wecom.db",
        "sqlite:",
        "sqlite://",
        "sqlite:///",
        "sqlite:////",
        "sqlite://host/state.db",
        "sqlite:///instance/",
        "sqlite:///:memory:",
        "sqlite:///state.db?mode=ro",
        "redis://",
        "rediss:///0",
        "file:///tmp/x.db",
    ],
)
def test_rejected(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("WECOM_STORE: ")
    for form in ACCEPTED_FORMS:
        assert form in message


def test_rejected_url_password_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="'postgres'") as caught:
        open_store("postgres://user:hunter2@db/wecom")
    assert "hunter2" not in str(caught.value)
