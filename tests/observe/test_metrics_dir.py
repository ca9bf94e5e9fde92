"""The gunicorn master's Prometheus directory: made, exported, kept over a reload, removed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from app import SettingError, create_app
from app.web import metrics_dir
from tests.conftest import BASE_CONFIG


def test_made_exported_kept_over_a_reload_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    environ: dict[str, str] = {}
    made = metrics_dir.prepare(environ)
    assert made.is_dir() and made.parent == tmp_path
    assert environ[metrics_dir.ENV] == str(made) == environ[metrics_dir.OWNED_ENV]
    (made / "counter_123.db").write_bytes(b"x")
    assert metrics_dir.prepare(environ) == made  # SIGHUP re-reads gunicorn.conf.py
    assert (made / "counter_123.db").exists()
    metrics_dir.cleanup(environ)
    assert not made.exists()


def test_a_directory_the_operator_names_is_emptied_and_kept(tmp_path):
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"old")
    (given / "README").write_text("not ours")
    environ = {metrics_dir.ENV: str(given)}
    assert metrics_dir.prepare(environ) == given
    assert [p.name for p in given.iterdir()] == ["README"]
    metrics_dir.cleanup(environ)
    assert Path(given, "README").exists()


def test_console_and_metrics_paths_must_be_free():
    with pytest.raises(SettingError) as info:
        create_app(BASE_CONFIG | {"WECOM_ADMIN_TOKEN": "x" * 20, "WECOM_PATH": "/console/wecom"})
    assert info.value.setting == "WECOM_ADMIN_TOKEN"
    assert "/console" in str(info.value)
