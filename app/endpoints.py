"""A configured callback endpoint: its settings, its crypto object and its router, built once."""

from __future__ import annotations

from dataclasses import dataclass

from .config import EndpointSettings
from .forward import Forwarder, forwarding_router
from .routing import Router, load_router
from .wecom import CallbackCrypto


@dataclass
class Endpoint:
    settings: EndpointSettings
    crypto: CallbackCrypto
    router: Router

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def receive_id(self) -> str:
        return self.settings.receive_id


def build_endpoint(
    settings: EndpointSettings, default_handlers: str, forwarder: Forwarder | None = None
) -> Endpoint:
    """``forwarder`` (from WECOM_FORWARD_URL) serves every endpoint that names no handler module
    of its own; the single-app endpoint's WECOM_HANDLERS counts as its default."""
    crypto = CallbackCrypto(settings.token, settings.aes_key, settings.receive_id)
    own_handlers = settings.handlers if settings.name != "app" else ""
    if forwarder is not None and not own_handlers:
        router = forwarding_router(forwarder)
    else:
        router = load_router(settings.handlers or default_handlers)
    return Endpoint(settings=settings, crypto=crypto, router=router)
