"""Apps, their secrets and the access_tokens issued for them: ``gettoken`` and token checks."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable, Mapping

from app.devtools.fakewecom import errcodes as E
from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.protocol import Call, ControlError, Reply, error, ok


@dataclasses.dataclass
class App:
    """One secret: a self-built app (with ``agent_id``) or the 微信客服 secret (without)."""

    secret: str
    agent_id: int | None = None
    kf: bool = True  # may call the kf/* APIs


@dataclasses.dataclass
class _Token:
    value: str
    secret: str
    issued_at: float
    expires_at: float


def secret_tag(secret: str) -> str:
    """What the request log shows instead of a secret."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:10]


class Credentials:
    """The corp, its apps and the tokens issued. Not locked: the state's lock is."""

    def __init__(
        self, corp_id: str, apps: Iterable[App], clock: FakeClock, expires_in: int = 7200
    ) -> None:
        self.corp_id = corp_id
        self.expires_in = expires_in
        self._clock = clock
        self._apps: dict[str, App] = {}
        for app in apps:
            self.add_app(app)
        self.reset()

    def reset(self) -> None:
        """Forget issued tokens and counters; keep the apps."""
        self._tokens: dict[str, _Token] = {}
        self.tokens_issued = 0

    def add_app(self, app: App) -> None:
        if app.agent_id is not None:
            for other in self._apps.values():
                if other.agent_id == app.agent_id and other.secret != app.secret:
                    raise ControlError(f"agent_id {app.agent_id} already belongs to an app")
        self._apps[app.secret] = app

    def app_with_agent(self, agent_id: int) -> App | None:
        return next((a for a in self._apps.values() if a.agent_id == agent_id), None)

    def configure(self, expires_in: int | None) -> None:
        if expires_in is not None:
            if expires_in < 1:
                raise ControlError("expires_in must be >= 1")
            self.expires_in = int(expires_in)

    # -- the API ------------------------------------------------------------------------------
    def gettoken(self, call: Call) -> Reply:
        corp_id = call.query.get("corpid")
        secret = call.query.get("corpsecret")
        if not corp_id:
            return error(E.MISSING_CORPID)
        if corp_id != self.corp_id:
            return error(E.INVALID_CORPID)
        if not secret:
            return error(E.MISSING_SECRET)
        if secret not in self._apps:
            return error(E.INVALID_CREDENTIAL)
        now = self._clock.now()
        value = secrets.token_urlsafe(96)  # real tokens are long opaque strings (≤512 bytes)
        self._tokens[value] = _Token(value, secret, now, now + self.expires_in)
        self.tokens_issued += 1
        return ok(access_token=value, expires_in=self.expires_in)

    def authenticate(self, query: Mapping[str, str], kf: bool) -> tuple[App | None, Reply | None]:
        """The app whose valid access_token the call carries, or the error to answer."""
        token = query.get("access_token")
        if not token:
            return None, error(E.MISSING_ACCESS_TOKEN)
        rec = self._tokens.get(token)
        if rec is None or rec.secret not in self._apps:
            return None, error(E.INVALID_ACCESS_TOKEN)
        if self._clock.now() >= rec.expires_at:
            return None, error(E.ACCESS_TOKEN_EXPIRED)
        app = self._apps[rec.secret]
        if kf and not app.kf:
            return None, error(E.API_FORBIDDEN)
        return app, None

    # -- control ------------------------------------------------------------------------------
    def expire(self, token: str | None = None) -> int:
        """Make one token (or all) answer 42001 from now on."""
        now = self._clock.now()
        count = 0
        for value in [token] if token else list(self._tokens):
            rec = self._tokens.get(value)
            if rec is not None and rec.expires_at > now:
                rec.expires_at = now
                count += 1
        return count

    def revoke(self, token: str | None = None) -> int:
        """Forget one token (or all): it answers 40014 from now on."""
        if token:
            return 1 if self._tokens.pop(token, None) else 0
        count = len(self._tokens)
        self._tokens.clear()
        return count
