"""A configured callback endpoint: its settings, its crypto object and its routers, built once."""

from __future__ import annotations

from dataclasses import dataclass

from app.routing.app_router import Router, load_router
from app.routing.forward import Forwarder, forwarding_router
from app.routing.kf_router import KfRouter, forwarding_kf_router, load_kf_router
from app.settings import EndpointSettings
from app.wecom import CallbackCrypto


@dataclass
class Endpoint:
    settings: EndpointSettings
    crypto: CallbackCrypto
    router: Router
    #: Handles 微信客服 items pulled after a kf_msg_or_event doorbell on this endpoint.
    kf_router: KfRouter | None = None
    #: Seconds a handler may run before its job is recorded as failed (WECOM_HANDLER_TIMEOUT).
    handler_timeout: float = 600.0

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def receive_id(self) -> str:
        return self.settings.receive_id


def build_endpoint(
    settings: EndpointSettings,
    default_handlers: str,
    forwarder: Forwarder | None = None,
    *,
    kf_handlers: str = "",
    kf_welcome: str = "",
) -> Endpoint:
    """``forwarder`` (from WECOM_FORWARD_URL) serves every endpoint that names no handler module
    of its own; the single-app endpoint's WECOM_HANDLERS counts as its default.

    Every endpoint gets a kf router (a kf_msg_or_event may also arrive on an app's endpoint): a
    kf endpoint's own handlers, else WECOM_KF_HANDLERS (``kf_handlers``), else the forwarder, else
    the kf demo. A kf endpoint's app router is empty: its callbacks are only doorbells."""
    crypto = CallbackCrypto(settings.token, settings.aes_key, settings.receive_id)
    if settings.kind == "kf":
        router = Router()
        kf_module = settings.handlers or kf_handlers
    else:
        own_handlers = settings.handlers if settings.name != "app" else ""
        if forwarder is not None and not own_handlers:
            router = forwarding_router(forwarder)
        else:
            router = load_router(settings.handlers or default_handlers)
        kf_module = kf_handlers
    if forwarder is not None and not kf_module:
        kf_router = forwarding_kf_router(forwarder, kf_welcome)
    else:
        kf_router = load_kf_router(kf_module, kf_welcome)
    return Endpoint(settings=settings, crypto=crypto, router=router, kf_router=kf_router)
