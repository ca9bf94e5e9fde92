"""Whether this process runs under gevent, for the layers that choose between threads and
greenlets (the SQLite store's group commit, the handler time limit, greenlet spawning)."""

from __future__ import annotations

import sys


def gevent_patched() -> bool:
    """True in a gunicorn gevent worker (or any process whose threading gevent patched).

    Looks gevent up in ``sys.modules`` rather than importing it: a process that never imported
    gevent is not patched, and this check stays a dictionary lookup on hot paths."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))
