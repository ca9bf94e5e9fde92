"""The access_token cache shared by every gunicorn worker of a host.

WeCom rate-limits ``gettoken`` and asks callers to cache the token, so the token lives in the shared
store (SQLite on one host) under a key derived from the CorpID and a hash of the secret: each app
secret has its own token, and the secret itself is never stored or logged.

Refresh is single-flight across processes: whoever wins the store lock calls ``gettoken``; the
others keep serving the old token while it is still valid, or poll the store for a bounded time
when there is none. So N workers that start together cause one ``gettoken``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Final, Protocol

from app.infra.api.errors import TokenUnavailableError
from app.infra.metrics import TOKEN_FETCHES, TOKEN_REJECTIONS

log = logging.getLogger(__name__)

#: Refresh this long before WeCom's expiry (the doc's advice is "about 5 minutes").
DEFAULT_REFRESH_MARGIN: Final = 300.0

#: fetch() returns (access_token, expires_in seconds).
FetchToken = Callable[[], tuple[str, int]]


class TokenStore(Protocol):
    """The part of :class:`app.infra.store.base.Store` the token cache uses."""

    def get_value(self, key: str, now: float) -> str | None: ...

    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None: ...

    def delete_value(self, key: str, if_value: str | None = None) -> bool: ...

    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool: ...

    def release_lock(self, name: str, owner: str) -> bool: ...


def cache_key(corp_id: str, secret: str) -> str:
    """Store key for the token of (corp_id, secret); holds a hash, never the secret."""
    digest = hashlib.sha256(f"{corp_id}\0{secret}".encode()).hexdigest()[:24]
    return f"wecom:access_token:{corp_id}:{digest}"


class TokenProvider:
    """Hands out a valid access_token, refreshing it once per host when it nears expiry.

    ``clock`` gives wall time (the store compares expiries with it); ``sleep`` and ``monotonic``
    pace and bound the wait for another worker's refresh. All three are injectable for tests.
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        store: TokenStore,
        fetch: FetchToken,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        lock_ttl: float = 60.0,
        wait_timeout: float = 15.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.key = cache_key(corp_id, secret)
        self._lock_name = f"{self.key}:refresh"
        self._store = store
        self._fetch = fetch
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._margin = refresh_margin
        self._lock_ttl = lock_ttl
        self._wait_timeout = wait_timeout
        self._poll = poll_interval
        self._owner_prefix = f"{socket.gethostname()}:{os.getpid()}"
        self.fetch_count = 0  # gettoken calls made by this instance (for tests and metrics)

    # -- public -------------------------------------------------------------------------------
    def get_token(self) -> str:
        """A token that is valid now; refreshes it (at most one worker at a time) when due."""
        deadline = self._monotonic() + self._wait_timeout
        max_rounds = int(self._wait_timeout / max(self._poll, 0.001)) + 2
        for _ in range(max_rounds):
            now = self._clock()
            cached = self._read(now)
            if cached is not None and now < cached[2]:
                return cached[0]
            token = self._try_refresh(now)
            if token is not None:
                return token
            # Another worker is refreshing. An old token that has not expired yet is still good.
            if cached is not None and now < cached[1]:
                return cached[0]
            if self._monotonic() >= deadline:
                break
            self._sleep(self._poll)
        raise TokenUnavailableError(
            f"no access_token after waiting {self._wait_timeout:.1f}s for another worker's refresh"
        )

    def invalidate(self, token: str) -> bool:
        """Forget ``token`` after WeCom refused it, unless the cache already holds a newer one."""
        raw = self._store.get_value(self.key, self._clock())
        if raw is None:
            return False
        parsed = _parse(raw)
        if parsed is None or parsed[0] != token:
            return False
        deleted = self._store.delete_value(self.key, if_value=raw)
        if deleted:
            TOKEN_REJECTIONS.inc()
            log.info("access_token invalidated (key %s)", self.key)
        return deleted

    # -- internals ----------------------------------------------------------------------------
    def _read(self, now: float) -> tuple[str, float, float] | None:
        """(token, expires_at, refresh_at) from the store, or None."""
        raw = self._store.get_value(self.key, now)
        return _parse(raw) if raw is not None else None

    def _try_refresh(self, now: float) -> str | None:
        """Fetch and store a new token if this caller wins the lock; None if someone else has it.

        The owner is unique per attempt, so two greenlets of one worker never both pass the lock
        (the store treats a lock "already ours" as acquired).
        """
        owner = f"{self._owner_prefix}:{uuid.uuid4().hex}"
        if not self._store.acquire_lock(self._lock_name, owner, now + self._lock_ttl, now):
            return None
        try:
            # Someone may have refreshed between our read and our lock.
            cached = self._read(self._clock())
            if cached is not None and self._clock() < cached[2]:
                return cached[0]
            token, expires_in = self._fetch()
            self.fetch_count += 1
            TOKEN_FETCHES.labels("missing" if cached is None else "expiring").inc()
            fetched_at = self._clock()
            expires_at = fetched_at + expires_in
            # Refresh ``margin`` early, but never sooner than half-way through a short lifetime.
            refresh_at = fetched_at + max(expires_in - self._margin, expires_in / 2)
            value = json.dumps({"token": token, "expires_at": expires_at, "refresh_at": refresh_at})
            self._store.set_value(self.key, value, expires_at)
            log.info("access_token refreshed (key %s, expires_in %ss)", self.key, expires_in)
            return token
        finally:
            self._store.release_lock(self._lock_name, owner)


def _parse(raw: str) -> tuple[str, float, float] | None:
    try:
        data = json.loads(raw)
        return str(data["token"]), float(data["expires_at"]), float(data["refresh_at"])
    except (ValueError, KeyError, TypeError):
        return None
