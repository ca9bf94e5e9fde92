"""Storage for dedup, delivery, the token cache and the 微信客服 cursor.

:func:`open_store` turns the ``WECOM_STORE`` setting into a :class:`Store`. Adding a backend means
one module with a :class:`Store` subclass and one entry in ``_OPENERS``: a Redis store, for
several hosts, would be ``app/store/redis.py`` with ``RedisStore.from_url(url)`` registered as
``"redis"`` (and ``"rediss"``), following the mapping sketched in :mod:`app.infra.store.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import ACTIVE_STATES, FINAL_STATES, UNSET, Job, JobState, Store, Unset
from .memory import MemoryStore
from .sqlite import SqliteStore
from .waiting import StoreBusy, patience

SETTING = "WECOM_STORE"
ACCEPTED_FORMS = ("memory://", "sqlite:///relative/path.db", "sqlite:////absolute/path.db")


def _invalid(problem: str) -> ValueError:
    return ValueError(f"{SETTING}: {problem}; use one of {', '.join(ACCEPTED_FORMS)}")


def _open_memory(url: str, rest: str) -> Store:
    if rest:
        raise _invalid(f"{url!r}: memory:// takes nothing after the slashes")
    return MemoryStore()


def _open_sqlite(url: str, rest: str) -> Store:
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


# scheme -> opener(url, rest after "://"); a Redis store registers "redis" here.
_OPENERS: dict[str, Callable[[str, str], Store]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
}


def open_store(url: str) -> Store:
    """The store named by a ``WECOM_STORE`` URL; raises ValueError naming the setting."""
    url = url.strip()
    scheme, separator, rest = url.partition("://")
    opener = _OPENERS.get(scheme.lower()) if separator else None
    if opener is None:
        # Show only the scheme: a URL of another backend may carry a password.
        shown = f"scheme {scheme.lower()!r}" if separator else f"{url!r}"
        raise _invalid(f"unsupported store {shown}")
    return opener(url, rest)


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
