""" "Nothing more will happen": the event a test waits for before it counts answers.

A job in a final state is never sent again, and a 微信客服 account without a wake is never pulled
again until a new callback comes. So once no job is active and no listed account has a wake, the
service has nothing left to do, and the counts a test reads then are final. Waiting for this
replaces a fixed "let's see whether anything more arrives" sleep, and it also catches what that
sleep could miss.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from app.infra.store import ACTIVE_STATES, Store
from app.jobs.kf_puller import wake_key


def settled(store: Store, open_kfids: Iterable[str] = ()) -> bool:
    now = time.time()
    if any(store.list_jobs(state, limit=1) for state in ACTIVE_STATES):
        return False
    return all(store.get_value(wake_key(open_kfid), now) is None for open_kfid in open_kfids)
