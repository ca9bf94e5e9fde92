"""The intelligent bot and the LLM backend, attached to the app by one call from
:meth:`CallbackService.init_app`: :func:`install_bots`.

It reads :mod:`app.bot_settings`, puts the model in front of the app and 微信客服 endpoints that
name no handlers, builds each bot (crypto, router) once, mounts its blueprint and stores a
:class:`BotService` in ``app.extensions["wecom_bot"]``. The per-process parts (responder,
ticker) are built after gunicorn forks, like the callback service's.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from app import llm as llm_facade
from app.bot_settings import BOT_DEMO_HANDLERS, BotEndpointSettings, BotSettings, bot_settings
from app.infra.llm import ChatHistory, LlmClient
from app.infra.response_url import ResponseUrlClient
from app.jobs.bot_responder import BotResponder
from app.jobs.streams import StreamStore
from app.routing.bot_router import BotRouter, load_bot_router
from app.routing.llm_routes import LlmAnswerer, llm_bot_router, use_llm
from app.web.bot_blueprint import bot_blueprint
from app.wecom.aibot import BotCrypto

if TYPE_CHECKING:
    from app.web.extension import CallbackService

log = logging.getLogger(__name__)


@dataclass
class BotEndpoint:
    settings: BotEndpointSettings
    crypto: BotCrypto
    router: BotRouter


class BotService:
    """``app.extensions["wecom_bot"]``: the bots, the model, and this process's responder."""

    def __init__(self, settings: BotSettings, callbacks: CallbackService, config: dict[str, Any]):
        self.settings = settings
        self.callbacks = callbacks  # for the store, shared with the XML side
        self.config = config
        self.bots: dict[str, BotEndpoint] = {}
        self.llm: LlmAnswerer | None = None
        self._lock = threading.Lock()
        self._responder: BotResponder | None = None
        self._pid: int | None = None

    @property
    def responder(self) -> BotResponder:
        with self._lock:
            if self._responder is None or self._pid != os.getpid():
                config = self.config
                self._responder = BotResponder(
                    {name: bot.router for name, bot in self.bots.items()},
                    {name: StreamStore(lambda: self.callbacks.store, name) for name in self.bots},
                    ResponseUrlClient(config["WECOM_API_BASE"], config["WECOM_API_TIMEOUT"]),
                    deadline=config["WECOM_REPLY_DEADLINE"],
                    handler_timeout=config["WECOM_HANDLER_TIMEOUT"],
                    lease=config["WECOM_LEASE_SECONDS"],
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


def install_bots(app: Flask, callbacks: CallbackService) -> BotService:
    """The one hook in the callback service's ``init_app`` (after its endpoints are built)."""
    config = app.config
    taken = {endpoint.settings.path: name for name, endpoint in callbacks.endpoints.items()}
    settings = bot_settings(config, taken)
    service = BotService(settings, callbacks, dict(config))
    if settings.llm.enabled:
        client = LlmClient(settings.llm)
        history = ChatHistory(lambda: callbacks.store, settings.llm.history)
        service.llm = LlmAnswerer(client, history, settings.llm.system_prompt, settings.fallback)
        log.info("text is answered by the model %s at %s", settings.llm.model, client.url)
        for endpoint in callbacks.endpoints.values():
            changed = use_llm(endpoint, service.llm, config)
            if changed:
                log.info("endpoint %s: the model answers %s", endpoint.name, " and ".join(changed))
    llm_facade.register(service.llm)
    for bot in settings.bots:
        router = load_bot_router(bot.handlers or BOT_DEMO_HANDLERS, bot.welcome)
        if service.llm is not None and not bot.handlers:
            router = llm_bot_router(service.llm, bot.name, router)
        service.bots[bot.name] = BotEndpoint(bot, BotCrypto(bot.token, bot.aes_key), router)
        app.register_blueprint(bot_blueprint(bot.name, bot.path))
        log.info("endpoint %s (aibot) at %s", bot.name, bot.path)
    app.extensions["wecom_bot"] = service
    return service


__all__ = ["BotEndpoint", "BotService", "install_bots"]
