"""Steer and observe a fake running in another process (``python -m app.devtools.fakewecom``).

Stdlib ``urllib`` only, so it works the same in a gevent-patched process and in a plain one.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class FakeControlError(RuntimeError):
    pass


class FakeControl:
    """Client of the fake's ``/_fake/`` JSON API. ``url`` is the fake's root or its base_url."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        root = url.split("/cgi-bin/")[0].split("/_fake/")[0].rstrip("/")
        if not root.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
            raise ValueError("the fake runs on the loopback interface only")
        self.root = root
        self.base_url = root + "/cgi-bin/"
        self.timeout = timeout

    def _call(
        self,
        method: str,
        action: str,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            f"{self.root}/_fake/{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                answer = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            exc.close()
            raise FakeControlError(f"{method} /_fake/{action}: HTTP {exc.code} {detail}") from None
        if not isinstance(answer, dict):
            raise FakeControlError(f"{method} /_fake/{action}: unexpected answer")
        return answer

    # -- observe ------------------------------------------------------------------------------
    def health(self) -> bool:
        try:
            return bool(self._call("GET", "health").get("ok"))
        except (OSError, FakeControlError):
            return False

    def wait_ready(self, timeout: float = 10.0, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / interval) + 1):
            if self.health():
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        raise FakeControlError(f"the fake at {self.root} did not answer within {timeout}s")

    def sent(self, api: str | None = None) -> list[dict[str, Any]]:
        action = "sent" + (f"?api={urllib.parse.quote(api)}" if api else "")
        return list(self._call("GET", action)["sent"])

    def sent_since(
        self, after: int, wait: float = 0.0, api: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """(messages sent from position ``after`` on, how many were sent in all). With ``wait``,
        the fake first holds the call up to ``wait`` seconds until there are more than ``after``
        (a long poll: an answer arrives as soon as the service sends, without sleeping here)."""
        query = {"after": str(after)}
        if wait > 0:
            query["wait"] = f"{wait:.3f}"
        if api:
            query["api"] = api
        answer = self._call(
            "GET", "sent?" + urllib.parse.urlencode(query), timeout=wait + self.timeout
        )
        return list(answer["sent"]), int(answer["total"])

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        action = "requests" + (f"?endpoint={urllib.parse.quote(endpoint)}" if endpoint else "")
        return list(self._call("GET", action)["requests"])

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    # -- steer --------------------------------------------------------------------------------
    def fault(self, endpoint: str, kind: str, *, count: int = 1, **params: Any) -> dict[str, int]:
        body = {"endpoint": endpoint, "count": count, "faults": [{"kind": kind, **params}]}
        return dict(self._call("POST", "faults", body)["pending"])

    def clear_faults(self) -> None:
        self._call("POST", "faults/clear", {})

    def enqueue_kf(self, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "kf/enqueue", spec)

    def add_kf_account(self, open_kfid: str, name: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "kf/accounts", {"open_kfid": open_kfid, "name": name}))

    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        body = {"open_kfid": open_kfid, "external_userid": external_userid, "state": state}
        return dict(self._call("POST", "kf/session", body)["session"])

    def expire_tokens(self, token: str | None = None) -> int:
        return int(self._call("POST", "tokens/expire", {"token": token})["expired"])

    def revoke_tokens(self, token: str | None = None) -> int:
        return int(self._call("POST", "tokens/revoke", {"token": token})["revoked"])

    def advance(self, seconds: float) -> float:
        return float(self._call("POST", "clock", {"advance": seconds})["now"])

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._call("POST", "config", settings)

    def add_app(self, secret: str, agent_id: int | None = None, kf: bool = True) -> None:
        self._call("POST", "apps", {"secret": secret, "agent_id": agent_id, "kf": kf})

    def reset(self) -> None:
        self._call("POST", "reset", {})
