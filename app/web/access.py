"""Who may see /metrics and /console: the admin token, its sessions, CSRF and login limits.

* ``/metrics`` takes ``Authorization: Bearer <WECOM_ADMIN_TOKEN>`` (what Prometheus sends).
* ``/console`` takes the same token as a password once, then a session: a cookie signed with the
  app's SECRET_KEY (derived from the token unless one is given, so every worker and every restart
  agrees), HttpOnly, SameSite=Strict, Secure when the request came over TLS (``request.is_secure``:
  gunicorn honours X-Forwarded-Proto only from ``forwarded_allow_ips``), valid 8 hours.
* Tokens are compared in constant time (HMAC digests of both sides, so the length leaks neither).
* Failed logins and failed bearer checks are limited per client address, in this process: at most
  :data:`MAX_FAILURES` per :data:`WINDOW_SECONDS`, remembering at most :data:`MAX_ADDRESSES`
  addresses (the oldest are forgotten first). With N workers an address gets at most N times as
  many tries; against a token of 16+ random characters that changes nothing.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, request, session
from flask.sessions import SecureCookieSessionInterface

SECRET_KEY_LABEL = b"wecom-console-session-v1"
SESSION_COOKIE = "wecom_console"
SESSION_HOURS = 8
MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def derived_secret_key(admin_token: str) -> str:
    """The session signing key when none is configured: an HMAC of a fixed label."""
    return hmac.new(admin_token.encode(), SECRET_KEY_LABEL, hashlib.sha256).hexdigest()


def token_matches(given: str, admin_token: str) -> bool:
    """Constant-time comparison (also in the length: both sides are hashed first)."""
    key = SECRET_KEY_LABEL
    left = hmac.new(key, given.encode("utf-8", "replace"), hashlib.sha256).digest()
    right = hmac.new(key, admin_token.encode(), hashlib.sha256).digest()
    return bool(admin_token) and hmac.compare_digest(left, right)


def token_fingerprint(admin_token: str) -> str:
    """Kept in the session: a changed token ends every session even with a fixed SECRET_KEY."""
    return hashlib.sha256(SECRET_KEY_LABEL + admin_token.encode()).hexdigest()[:16]


def bearer_matches(header: str | None, admin_token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(value.strip(), admin_token)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure exactly when the request came over TLS, and only
    under the console's path: anywhere else (every callback) Flask gets no session to open and
    gives the request a null one, instead of building a signer and reading cookies that no
    browser sends there (the cookie's Path is /console)."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.path.startswith(app.config["SESSION_COOKIE_PATH"]):
            return None
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def configure_sessions(app: Flask, admin_token: str) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = derived_secret_key(admin_token)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.session_interface = ConsoleSessionInterface()


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# -- sessions and CSRF ---------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's CSRF token, made on first use (the login form has one too)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid() -> bool:
    expected = session.get("csrf")
    given = request.form.get("csrf", "")
    return (
        isinstance(expected, str)
        and bool(expected)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def log_in(admin_token: str) -> None:
    session.clear()
    session.permanent = True
    session["admin"] = token_fingerprint(admin_token)
    session["csrf"] = secrets.token_urlsafe(32)


def log_out() -> None:
    session.clear()


def logged_in(admin_token: str) -> bool:
    mark = session.get("admin")
    return isinstance(mark, str) and hmac.compare_digest(mark, token_fingerprint(admin_token))


# -- failed attempts per address -----------------------------------------------------------------
class FailureLimiter:
    """Failures per client address in a sliding window, with a bounded number of addresses."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        with self._lock:
            recent = self._recent(address)
            if len(recent) < self.max_failures:
                return 0.0
            return max(recent[0] + self.window - self.clock(), 0.001)

    def failed(self, address: str) -> None:
        with self._lock:
            recent = self._recent(address)
            recent.append(self.clock())
            while len(recent) > self.max_failures:
                recent.popleft()
            self._failures[address] = recent
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str) -> collections.deque[float]:
        recent = self._failures.get(address, collections.deque())
        cutoff = self.clock() - self.window
        while recent and recent[0] <= cutoff:
            recent.popleft()
        return recent

    def __len__(self) -> int:
        return len(self._failures)
