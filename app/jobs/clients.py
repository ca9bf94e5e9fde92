"""The WeCom API clients of one worker process: one per endpoint and purpose, made on first use.

All clients share the store, so every worker of every host shares one access_token per app.
"""

from __future__ import annotations

import threading

from app.infra.api.client import WeComClient
from app.infra.store import Store
from app.routing.endpoints import Endpoint

CONNECT_TIMEOUT = 3.05  # a little over a multiple of 3 s, TCP's retransmission window


class ApiClients:
    def __init__(self, store: Store, api_base: str, read_timeout: float) -> None:
        self.store = store
        self.api_base = api_base
        self.timeout = (CONNECT_TIMEOUT, read_timeout)
        self._clients: dict[str, WeComClient] = {}
        self._lock = threading.Lock()

    def for_app(self, endpoint: Endpoint) -> WeComClient | None:
        """The client that sends an app's late answers; None without a secret and agent id."""
        settings = endpoint.settings
        if not settings.secret or not settings.agent_id:
            return None
        agent_id = int(settings.agent_id)
        return self._client(f"app:{endpoint.name}", endpoint, settings.secret, agent_id)

    def for_kf(self, endpoint: Endpoint) -> WeComClient | None:
        """The 微信客服 client of an endpoint (no agent id needed); None without a secret. The
        puller and the kf answers share it."""
        if not endpoint.settings.kf_secret:
            return None
        return self._client(f"kf:{endpoint.name}", endpoint, endpoint.settings.kf_secret, None)

    def _client(
        self,
        name: str,
        endpoint: Endpoint,
        secret: str,
        agent_id: int | None,
    ) -> WeComClient:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = WeComClient(
                    endpoint.receive_id,
                    secret,
                    self.store,
                    agent_id=agent_id,
                    api_base=self.api_base,
                    timeout=self.timeout,
                )
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
