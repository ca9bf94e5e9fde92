"""Storage for dedup, delivery, the token cache and the 微信客服 cursor.

:func:`open_store` turns the ``WECOM_STORE`` setting into a :class:`Store`. Adding a backend means
one module with a :class:`Store` subclass and one entry in ``_OPENERS``. The Redis store, for
several hosts, is :mod:`app.infra.store.redis` (``redis://`` and ``rediss://``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import ACTIVE_STATES, FINAL_STATES, UNSET, Job, JobState, Store, Unset
from .memory import MemoryStore
from .sqlite import SqliteStore
from .waiting import StoreBusy, patience

SETTING = "WECOM_STORE"
ACCEPTED_FORMS = (
    "memory://",
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "redis://[:password@]host:port/db",
    "rediss://[:password@]host:port/db",
)


def _invalid(problem: str) -> ValueError:
    return ValueError(f"{SETTING}: {problem}; use one of {', '.join(ACCEPTED_FORMS)}")


def _open_memory(url: str, rest: str, prefix: str | None) -> Store:
    if rest:
        raise _invalid(f"{url!r}: memory:// takes nothing after the slashes")
    return MemoryStore()


def _open_sqlite(url: str, rest: str, prefix: str | None) -> Store:
    """SQLAlchemy-style: ``sqlite:///`` then the path, so a fourth slash makes it absolute."""
    if not rest.startswith("/"):
        raise _invalid(f"{url!r}: an SQLite URL has three slashes before the path (no host)")
    path = rest[1:]
    if not path or path.endswith("/"):
        raise _invalid(f"{url!r}: the SQLite URL names no file")
    if path == ":memory:":
        raise _invalid(f"{url!r}: an in-memory SQLite database is not shared; use memory://")
    if "?" in path:
        raise _invalid(f"{url!r}: SQLite URL options (?...) are not supported")
    return SqliteStore(Path(path))  # a relative path is relative to the working directory


def _open_redis(url: str, rest: str, prefix: str | None) -> Store:
    """Connects and checks the credentials now, so a bad URL stops start-up."""
    if not rest or rest.startswith(("/", "?")):
        raise _invalid(f"a Redis URL names the host: {url.partition(':')[0]}://host:port/db")
    from .redis import DEFAULT_PREFIX, RedisStore  # imported only by those who use it

    return RedisStore.from_url(url, prefix=DEFAULT_PREFIX if prefix is None else prefix)


# scheme -> opener(url, rest after "://", key prefix of stores that share a server).
_OPENERS: dict[str, Callable[[str, str, str | None], Store]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "redis": _open_redis,
    "rediss": _open_redis,
}


def open_store(url: str, *, prefix: str | None = None) -> Store:
    """The store named by a ``WECOM_STORE`` URL; raises ValueError naming the setting.

    ``prefix`` (``WECOM_REDIS_PREFIX``) starts every key of a Redis store; None: ``wecom:``.
    """
    url = url.strip()
    scheme, separator, rest = url.partition("://")
    opener = _OPENERS.get(scheme.lower()) if separator else None
    if opener is None:
        # Show only the scheme: a URL of another backend may carry a password.
        shown = f"scheme {scheme.lower()!r}" if separator else f"{url!r}"
        raise _invalid(f"unsupported store {shown}")
    return opener(url, rest, prefix)


__all__ = [
    "ACCEPTED_FORMS",
    "ACTIVE_STATES",
    "FINAL_STATES",
    "UNSET",
    "Job",
    "JobState",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreBusy",
    "Unset",
    "open_store",
    "patience",
]
