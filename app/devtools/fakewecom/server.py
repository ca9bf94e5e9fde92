"""The fake WeCom API as a server on the loopback interface: :class:`FakeWeCom` for tests in this
process, :func:`serve_until_stopped` for ``python -m app.devtools.fakewecom`` and
``flask fake-wecom``.

API:      /cgi-bin/gettoken, /cgi-bin/message/send, /cgi-bin/kf/{sync_msg,send_msg,
          send_msg_on_event,account/list}
Control:  /_fake/... (JSON), described in the package docstring (``__init__.py``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any, Final

from app.devtools.fakewecom.faults import Fault
from app.devtools.fakewecom.httpd import FakeHTTPServer
from app.devtools.fakewecom.model import FakeWeComState
from app.devtools.fakewecom.tokens import App

#: The only hosts the fake binds: it hands out tokens for any secret it is given.
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_LIFETIME: Final = 3600.0


def check_loopback_host(host: str) -> str:
    """``host`` if it is a loopback address the fake may bind, else ValueError."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"the fake WeCom API listens on the loopback interface only "
            f"({', '.join(LOOPBACK_HOSTS)}), not {host!r}"
        )
    return host


class FakeWeCom:
    """A fake WeCom API server on 127.0.0.1, for tests in this process or others.

    >>> with FakeWeCom(corp_id="wwcorp", secret="s3cret", agent_id=1000002) as fake:
    ...     fake.base_url   # "http://127.0.0.1:PORT/cgi-bin/"

    Several secrets: ``secret``/``agent_id`` is the app, ``kf_secret`` an optional separate
    微信客服 secret, and :meth:`add_app` adds more. ``kf_accounts`` are the open_kfids.
    """

    def __init__(
        self,
        *,
        corp_id: str = "wwfakecorp000001",
        secret: str = "fake-app-secret",
        agent_id: int | None = 1000002,
        kf_secret: str | None = None,
        kf_accounts: Iterable[str] = ("wkFAKEKF000001",),
        expires_in: int = 7200,
        known_users: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_loopback_host(host)
        apps = [App(secret=secret, agent_id=agent_id)]
        if kf_secret is not None:
            apps.append(App(secret=kf_secret, agent_id=None))
        self.state = FakeWeComState(
            corp_id,
            apps,
            expires_in=expires_in,
            kf_accounts=kf_accounts,
            known_users=known_users,
            clock=clock,
        )
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.kf_secret = kf_secret
        self._host = host
        self._port = port
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeWeCom:
        if self._server is not None:
            return self
        self._server = FakeHTTPServer((self._host, self._port), self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fakewecom",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        self.state.wake_waiters()  # long polls (GET /_fake/sent?wait=) end now
        server.shutdown()
        server.close_connections(join_timeout)
        server.server_close()
        if self._thread is not None:
            self._thread.join(join_timeout)
            self._thread = None

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running")
        host = str(self._server.server_address[0])
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """What a client uses as api_base."""
        return self.url + "cgi-bin/"

    @property
    def control_url(self) -> str:
        return self.url + "_fake/"

    # -- in-process shortcuts (the same as the control API) -----------------------------------
    @property
    def gettoken_calls(self) -> int:
        return self.state.gettoken_calls

    def add_app(self, secret: str, agent_id: int | None = None, *, kf: bool = True) -> None:
        self.state.add_app(App(secret=secret, agent_id=agent_id, kf=kf))

    def add_faults(
        self, endpoint: str, *faults: Fault | Mapping[str, Any], count: int = 1
    ) -> dict[str, int]:
        return self.state.add_faults(endpoint, faults, count)

    def fault(self, endpoint: str, kind: str, *, count: int = 1, **params: Any) -> None:
        """Queue ``count`` faults of one kind, e.g. ``fault("message/send", "errcode",
        errcode=-1)`` or ``fault("*", "delay", seconds=2)``."""
        self.state.add_faults(endpoint, [{"kind": kind, **params}], count)

    def enqueue_kf(self, spec: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.state.enqueue_kf({**(spec or {}), **kwargs})

    def sent(self, api: str | None = None) -> list[dict[str, Any]]:
        return self.state.sent(api)

    def wait_sent(self, after: int, timeout: float) -> int:
        """Block until more than ``after`` messages were sent or ``timeout``; the count."""
        return self.state.wait_sent(after, timeout)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self.state.requests(endpoint)

    def expire_tokens(self, token: str | None = None) -> int:
        return self.state.expire_tokens(token)

    def revoke_tokens(self, token: str | None = None) -> int:
        return self.state.revoke_tokens(token)

    def advance(self, seconds: float) -> float:
        return self.state.advance(seconds)

    def set_session(self, open_kfid: str, external_userid: str, state: int) -> dict[str, Any]:
        return self.state.set_session(open_kfid, external_userid, state)

    def reset(self) -> None:
        self.state.reset()


def serve_until_stopped(
    fake: FakeWeCom,
    max_lifetime: float = DEFAULT_MAX_LIFETIME,
    announce: Callable[[FakeWeCom], None] = lambda fake: None,
) -> None:
    """Start ``fake``, call ``announce`` and serve until SIGTERM, SIGINT or ``max_lifetime``
    seconds (so a forgotten fake does not linger). Call it from the main thread."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        fake.start()
        try:
            announce(fake)
            done.wait(max_lifetime)
        finally:
            fake.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
