"""The server side of the control API (``/_fake/…``): one function from a call to its answer.

The client is ``control.FakeControl``; the calls are listed in the package docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.devtools.fakewecom.model import FakeWeComState
from app.devtools.fakewecom.protocol import ControlError
from app.devtools.fakewecom.tokens import App


def run_control(
    state: FakeWeComState,
    method: str,
    action: str,
    query: Mapping[str, str],
    body: dict[str, Any],
    stopping: Callable[[], bool] = lambda: False,
) -> dict[str, Any] | None:
    """Run one control call; None when there is no such action. Bad arguments raise
    ControlError, ValueError, KeyError or TypeError (answered with HTTP 400)."""
    if method == "GET":
        if action == "health":
            return {"ok": True}
        if action == "sent":
            return _sent(state, query, stopping)
        if action == "requests":
            return {"requests": state.requests(query.get("endpoint"))}
        if action == "stats":
            return state.stats()
        return None
    if (action == "faults" and method == "DELETE") or action == "faults/clear":
        state.clear_faults()
        return {"pending": {}}
    if method != "POST":
        return None
    if action == "faults":
        faults = body.get("faults")
        if faults is None:
            faults = [{k: v for k, v in body.items() if k not in ("endpoint", "count")}]
        pending = state.add_faults(
            str(body.get("endpoint", "*")), faults, int(body.get("count", 1))
        )
        return {"pending": pending}
    if action == "kf/enqueue":
        return state.enqueue_kf(body)
    if action == "kf/accounts":
        return {"account": state.add_kf_account(str(body["open_kfid"]), body.get("name"))}
    if action == "kf/session":
        return {
            "session": state.set_session(
                str(body["open_kfid"]), str(body["external_userid"]), int(body["state"])
            )
        }
    if action == "tokens/expire":
        return {"expired": state.expire_tokens(body.get("token"))}
    if action == "tokens/revoke":
        return {"revoked": state.revoke_tokens(body.get("token"))}
    if action == "clock":
        return {"now": state.advance(float(body.get("advance", 0)))}
    if action == "config":
        expires_in = body.get("expires_in")
        return state.configure(expires_in=int(expires_in) if expires_in is not None else None)
    if action == "apps":
        agent_id = body.get("agent_id")
        state.add_app(
            App(
                secret=str(body["secret"]),
                agent_id=int(agent_id) if agent_id is not None else None,
                kf=bool(body.get("kf", True)),
            )
        )
        return {}
    if action == "reset":
        state.reset()
        return {}
    return None


def _sent(
    state: FakeWeComState, query: Mapping[str, str], stopping: Callable[[], bool]
) -> dict[str, Any]:
    """``sent[?api=…][&after=N][&wait=S]``: the messages from position N on; with ``wait``, first
    block up to S seconds until there are more than N (a long poll, so callers need no sleeps)."""
    after = int(query.get("after", 0))
    if after < 0:
        raise ControlError("after must be >= 0")
    if "wait" in query:
        state.wait_sent(after, float(query["wait"]), stopping)
    sent, total = state.sent_page(query.get("api"), after)
    return {"sent": sent, "total": total}
