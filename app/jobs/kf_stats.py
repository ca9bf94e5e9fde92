"""How far behind each 微信客服 account is: recorded per kf/sync_msg page, read by /metrics and
the console.

The record lives in the store (``kf:stats:<open_kfid>``), so every worker sees the latest pull of
any worker. ``lag`` is the age of the newest message of the last page that had messages, measured
when it was pulled; a page that ends the backlog empty sets it to 0 (caught up), so an account
that simply receives nothing does not look late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.infra.metrics import KF_MESSAGES_PULLED
from app.infra.store import Store

STATS_TTL = 7 * 24 * 3600.0


def stats_key(open_kfid: str) -> str:
    return f"kf:stats:{open_kfid}"


@dataclass(frozen=True)
class KfStats:
    last_pull: float  # wall time of the last page
    lag: float  # seconds, see the module docstring
    pulled: int  # items of the last page


def record_page(store: Store, open_kfid: str, items: list[Any], has_more: Any, now: float) -> None:
    """Record one kf/sync_msg page of ``open_kfid`` (called by the puller for every page)."""
    KF_MESSAGES_PULLED.labels(open_kfid).inc(len(items))
    times = [_send_time(item) for item in items if isinstance(item, dict)]
    times = [t for t in times if t > 0]
    if times:
        lag = max(now - max(times), 0.0)
    elif not has_more:
        lag = 0.0
    else:
        previous = read(store, open_kfid, now)
        lag = previous.lag if previous else 0.0
    record = {"last_pull": now, "lag": round(lag, 3), "pulled": len(items)}
    store.set_value(stats_key(open_kfid), json.dumps(record), now + STATS_TTL)


def read(store: Store, open_kfid: str, now: float) -> KfStats | None:
    raw = store.get_value(stats_key(open_kfid), now)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return KfStats(float(data["last_pull"]), float(data["lag"]), int(data["pulled"]))
    except (ValueError, KeyError, TypeError):
        return None


def _send_time(item: dict[str, Any]) -> float:
    try:
        return float(item.get("send_time") or 0)
    except (TypeError, ValueError):
        return 0.0
