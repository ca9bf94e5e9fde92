"""The intelligent bot and the LLM backend, attached to the app by one call from
:meth:`CallbackService.init_app`: :func:`install_bots`.

It reads ``Settings.bots`` (:mod:`app.settings.bots`), puts the model in front of the app and
微信客服 endpoints that name no handlers, builds each bot (crypto, router) once, mounts its
blueprint and stores a :class:`BotService` in ``app.extensions["wecom_bot"]``. The per-process
parts (responder, ticker) are built after gunicorn forks, like the callback service's.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from app import llm as llm_facade
from app.infra.api.response_url import ResponseUrlClient
from app.infra.llm import ChatHistory, LlmClient
from app.jobs.bot_responder import BotResponder
from app.jobs.streams import StreamStore
from app.routing.bot_router import BotRouter
from app.routing.llm_routes import LlmAnswerer, llm_bot_router, use_llm
from app.routing.loading import HandlerModuleError, load_router
from app.settings import SettingError, Settings
from app.settings.bots import BOT_DEMO_HANDLERS, SINGLE_BOT, BotEndpointSettings
from app.web.bot_blueprint import bot_blueprint
from app.wecom.aibot import BotCrypto

if TYPE_CHECKING:
    from app.web.extension import WeComService

log = logging.getLogger(__name__)


@dataclass
class BotEndpoint:
    settings: BotEndpointSettings
    crypto: BotCrypto
    router: BotRouter


class BotService:
    """``app.extensions["wecom_bot"]``: the bots, the model, and this process's responder."""

    def __init__(self, settings: Settings, callbacks: WeComService) -> None:
        self.settings = settings.bots
        self.service_settings = settings
        self.callbacks = callbacks  # for the store, shared with the XML side
        self.bots: dict[str, BotEndpoint] = {}
        self.llm: LlmAnswerer | None = None
        self._lock = threading.Lock()
        self._responder: BotResponder | None = None
        self._pid: int | None = None

    @property
    def responder(self) -> BotResponder:
        with self._lock:
            if self._responder is None or self._pid != os.getpid():
                service = self.service_settings
                self._responder = BotResponder(
                    {name: bot.router for name, bot in self.bots.items()},
                    {name: StreamStore(lambda: self.callbacks.store, name) for name in self.bots},
                    ResponseUrlClient(service.api_base, service.api_timeout),
                    deadline=service.reply_deadline,
                    handler_timeout=service.handler_timeout,
                    lease=service.lease_seconds,
                    window=self.settings.stream_window,
                    fallback=self.settings.fallback,
                )
                self._pid = os.getpid()
            return self._responder

    def respond(
        self, bot: str, message: dict[str, Any], received_at: float
    ) -> dict[str, Any] | None:
        return self.responder.respond(bot, message, received_at)

    def stop(self) -> None:
        if self._responder is not None:
            self._responder.stop()


def install_bots(app: Flask, callbacks: WeComService) -> BotService:
    """The one hook in the callback service's ``init_app`` (after its endpoints are built)."""
    service = BotService(callbacks.settings, callbacks)
    settings = service.settings
    if settings.llm.enabled:
        client = LlmClient(settings.llm)
        history = ChatHistory(lambda: callbacks.store, settings.llm.history)
        service.llm = LlmAnswerer(client, history, settings.llm.system_prompt, settings.fallback)
        for endpoint in callbacks.endpoints.values():
            use_llm(endpoint, service.llm)
    llm_facade.register(service.llm)
    for bot in settings.bots:
        router = _load_router(bot).with_welcome(bot.welcome)
        if service.llm is not None and not bot.handlers:
            router = llm_bot_router(service.llm, bot.name, router)
        service.bots[bot.name] = BotEndpoint(bot, BotCrypto(bot.token, bot.aes_key), router)
        app.register_blueprint(bot_blueprint(bot.name, bot.path))
    app.extensions["wecom_bot"] = service
    return service


def _load_router(bot: BotEndpointSettings) -> BotRouter:
    try:
        return load_router(bot.handlers or BOT_DEMO_HANDLERS, BotRouter)
    except HandlerModuleError as exc:
        setting = "WECOM_BOT_HANDLERS" if bot.name == SINGLE_BOT else "WECOM_ENDPOINTS"
        raise SettingError(setting, str(exc)) from None


__all__ = ["BotEndpoint", "BotService", "install_bots"]
