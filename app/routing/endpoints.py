"""A configured callback endpoint: its settings, its crypto object and its routers, built once."""

from __future__ import annotations

from dataclasses import dataclass

from app.routing.app_router import Router
from app.routing.forward import Forwarder, forwarding_kf_router, forwarding_router
from app.routing.kf_router import KfRouter
from app.routing.loading import HandlerModuleError, load_router
from app.settings import EndpointSettings, ForwardSettings, SettingError
from app.wecom import CallbackCrypto


@dataclass
class Endpoint:
    settings: EndpointSettings
    crypto: CallbackCrypto
    #: Answers the endpoint's own messages (empty on a 微信客服 endpoint: only doorbells arrive).
    router: Router
    #: Answers 微信客服 items pulled after a kf_msg_or_event doorbell on this endpoint.
    kf_router: KfRouter
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
    forward: ForwardSettings | None = None,
    *,
    kf_welcome: str = "",
    handler_timeout: float = 600.0,
) -> Endpoint:
    """Load the endpoint's handler modules (an empty module name means the forwarder answers).

    A module that cannot be imported or offers no router is a :class:`SettingError` naming the
    setting that named it.
    """
    crypto = CallbackCrypto(settings.token, settings.aes_key, settings.receive_id)
    if settings.kind == "kf":
        router = Router()
    elif settings.handlers:
        router = _load(settings.handlers, Router, settings.handlers_setting)
    else:
        router = forwarding_router(_forwarder(forward))
    if settings.kf_handlers:
        kf_module = _load(settings.kf_handlers, KfRouter, settings.kf_handlers_setting)
        kf_router = kf_module.with_welcome(kf_welcome)
    else:
        kf_router = forwarding_kf_router(_forward_settings(forward), kf_welcome)
    return Endpoint(
        settings=settings,
        crypto=crypto,
        router=router,
        kf_router=kf_router,
        handler_timeout=handler_timeout,
    )


def _load(module: str, router_class: type, setting: str):
    try:
        return load_router(module, router_class)
    except HandlerModuleError as exc:
        raise SettingError(setting, str(exc)) from None


def _forward_settings(forward: ForwardSettings | None) -> ForwardSettings:
    if forward is None:  # the settings resolve an empty module name only when forwarding
        raise SettingError("WECOM_FORWARD_URL", "an endpoint forwards but no URL is set")
    return forward


def _forwarder(forward: ForwardSettings | None) -> Forwarder:
    settings = _forward_settings(forward)
    return Forwarder(
        settings.url, settings.timeout, settings.fallback, max_bytes=settings.max_bytes
    )
