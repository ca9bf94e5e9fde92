"""Runs in a spawned process: one "gunicorn worker" asking for the shared access_token."""

from __future__ import annotations

import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any


def fetch_token(
    db_path: str,
    base_url: str,
    corp_id: str,
    secret: str,
    ready: Queue[Any],
    go: Event,
    results: Queue[Any],
) -> None:
    from app.infra.api import WeComClient
    from app.infra.store.sqlite import SqliteStore

    store = SqliteStore(db_path)
    client = WeComClient(corp_id, secret, store, api_base=base_url, timeout=(2.0, 10.0))
    try:
        ready.put(os.getpid())
        if not go.wait(60):
            results.put(("error", "never told to go", 0))
            return
        token = client.tokens.get_token()
        results.put(("ok", token, client.tokens.fetch_count))
    except Exception as exc:  # reported to the test process
        results.put(("error", repr(exc), 0))
    finally:
        client.close()
        store.close()
