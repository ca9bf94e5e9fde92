"""The per-application service object (``app.extensions["wecom"]``).

It owns what lives as long as the app: the endpoints, the store, the API clients, the deadline
responder, the outbox and the background loop. Clients and the loop belong to one worker process:
they are created after gunicorn forks (``post_worker_init``) or on the first request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from flask import Flask

from app import settings as settings_module
from app.infra.api.client import RetryPolicy, WeComClient
from app.infra.store import Job, JobState, Store, open_store
from app.jobs.app_answers import AppAnswers
from app.jobs.deadline import DeadlineResponder
from app.jobs.kf_answers import KfAnswers
from app.jobs.kf_puller import KfPuller, is_doorbell
from app.jobs.outbox import BackgroundLoop, Outbox, new_owner_id
from app.routing.endpoints import Endpoint, build_endpoint
from app.routing.forward import Forwarder
from app.web.blueprint import callback_blueprint
from app.web.bot_extension import install_bots
from app.wecom import Reply, parse_message

log = logging.getLogger(__name__)

DEAD_LETTERS_SHOWN = 100  # /healthz counts dead letters up to this many


class CallbackService:
    """Built once per Flask app by :meth:`init_app`; the blueprints look it up per request."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.dev_profile = False
        self.config: dict[str, Any] = {}
        self._clients: dict[str, WeComClient | None] = {}
        self._clients_lock = threading.Lock()
        self._store: Store | None = None
        self._runtime_lock = threading.Lock()
        self._runtime: tuple[BackgroundLoop, Outbox, DeadlineResponder] | None = None
        self._runtime_pid: int | None = None
        self._puller: KfPuller | None = None

    # -- set-up ----------------------------------------------------------------------------------
    def init_app(self, app: Flask) -> None:
        config = app.config
        settings_module.normalise(config)
        if settings_module.uses_dev_profile(config):
            self.dev_profile = True
            config.update(settings_module.DEV_PROFILE)
            log.warning(
                "DEVELOPMENT PROFILE: no WeCom keys configured, using the public test keys "
                "(token %s, corp id %s). Set WECOM_TOKEN, WECOM_AES_KEY and WECOM_CORP_ID "
                "before pointing WeCom at this service.",
                config["WECOM_TOKEN"],
                config["WECOM_CORP_ID"],
            )
        try:
            open_store(config["WECOM_STORE"]).close()  # fail now on a bad URL or path
        except ValueError as exc:
            raise settings_module.SettingError("WECOM_STORE", str(exc).split(": ", 1)[-1]) from None
        except OSError as exc:
            raise settings_module.SettingError("WECOM_STORE", f"cannot open: {exc}") from None
        forwarder = None
        if config["WECOM_FORWARD_URL"]:
            forwarder = Forwarder(
                config["WECOM_FORWARD_URL"],
                config["WECOM_FORWARD_TIMEOUT"],
                config["WECOM_FORWARD_FALLBACK"],
            )
            log.info("forwarding messages to %s", config["WECOM_FORWARD_URL"])
        for endpoint_settings in settings_module.endpoint_settings(config):
            endpoint = build_endpoint(
                endpoint_settings,
                config["WECOM_HANDLERS"],
                forwarder,
                kf_handlers=config["WECOM_KF_HANDLERS"],
                kf_welcome=config["WECOM_KF_WELCOME"],
            )
            endpoint.handler_timeout = config["WECOM_HANDLER_TIMEOUT"]
            self.endpoints[endpoint.name] = endpoint
            app.register_blueprint(callback_blueprint(endpoint.name, endpoint_settings.path))
            log.info(
                "endpoint %s (%s) at %s",
                endpoint.name,
                endpoint_settings.kind,
                endpoint_settings.path,
            )
            if endpoint_settings.kind == "app" and not (
                endpoint_settings.secret and endpoint_settings.agent_id
            ):
                log.warning(
                    "endpoint %s: WECOM_SECRET and WECOM_AGENT_ID are not both set, so answers "
                    "slower than %.1f s (WECOM_REPLY_DEADLINE) cannot be delivered; they will be "
                    "recorded as failed",
                    endpoint.name,
                    config["WECOM_REPLY_DEADLINE"],
                )
            if endpoint_settings.kind == "kf" and not endpoint_settings.secret:
                log.warning(
                    "endpoint %s: neither WECOM_KF_SECRET nor WECOM_SECRET is set, so 微信客服 "
                    "messages can be neither pulled nor answered",
                    endpoint.name,
                )
        app.config["MAX_CONTENT_LENGTH"] = config["WECOM_MAX_BODY"]
        self.config = dict(config)
        app.extensions["wecom"] = self
        app.before_request(self.start_background)
        install_bots(app, self)  # intelligent bots and the LLM backend (app.web.bot_extension)

    # -- per-process runtime ---------------------------------------------------------------------
    @property
    def store(self) -> Store:
        self._runtime_parts()
        assert self._store is not None
        return self._store

    def _runtime_parts(self) -> tuple[BackgroundLoop, Outbox, DeadlineResponder]:
        """Build the store, loop, outbox and responder once per process (after a fork)."""
        with self._runtime_lock:
            if self._runtime is None or self._runtime_pid != os.getpid():
                store = open_store(self.config["WECOM_STORE"])
                owner = new_owner_id()
                loop = BackgroundLoop(
                    store,
                    owner,
                    recover=lambda job: outbox.recover(job),
                    lease_seconds=self.config["WECOM_LEASE_SECONDS"],
                )
                kf_answers = KfAnswers(self.endpoints, self.kf_client_for, store)
                outbox = Outbox(
                    store,
                    owner,
                    {"app": AppAnswers(self.endpoints, self.client_for), "kf": kf_answers},
                    max_attempts=self.config["WECOM_DELIVERY_ATTEMPTS"],
                )
                self._puller = KfPuller(
                    store,
                    loop,
                    outbox,
                    kf_answers,
                    self.endpoints,
                    self.kf_client_for,
                    history_seconds=self.config["WECOM_KF_HISTORY_SECONDS"],
                    lease_seconds=self.config["WECOM_LEASE_SECONDS"],
                )
                responder = DeadlineResponder(
                    store,
                    loop,
                    outbox,
                    self.config["WECOM_REPLY_DEADLINE"],
                    render=self.render_reply,
                    encrypt=self.encrypt_reply,
                )
                self._store = store
                self._clients = {}
                self._runtime = (loop, outbox, responder)
                self._runtime_pid = os.getpid()
            return self._runtime

    def start_background(self) -> None:
        """Start this process's background loop and kf sweep; a no-op when they run already."""
        self._runtime_parts()[0].start()
        self.puller.start()

    def stop_background(self) -> None:
        if self._runtime is not None:
            self._runtime[0].stop()
        if self._puller is not None:
            self._puller.stop()

    @property
    def puller(self) -> KfPuller:
        self._runtime_parts()
        assert self._puller is not None
        return self._puller

    @property
    def outbox(self) -> Outbox:
        return self._runtime_parts()[1]

    def take_dead_job(self, key: str) -> Job | None:
        """Move a dead job back to the outbox, owned by this process, for an immediate retry."""
        loop = self._runtime_parts()[0]
        moved = self.store.update_job(
            key,
            expect_states=(JobState.DEAD,),
            state=JobState.OUTBOX,
            owner=loop.owner,
            lease_until=loop.lease_until(),
            attempts=0,
            now=time.time(),
        )
        return self.store.get_job(key) if moved else None

    def client_for(self, endpoint: Endpoint) -> WeComClient | None:
        """The API client of an endpoint's app, or None when it has no secret (or agent id)."""
        settings = endpoint.settings
        if not settings.secret or (settings.kind == "app" and not settings.agent_id):
            return None
        with self._clients_lock:
            if endpoint.name not in self._clients:
                self._clients[endpoint.name] = WeComClient(
                    settings.receive_id or self.config["WECOM_CORP_ID"],
                    settings.secret,
                    self.store,
                    agent_id=int(settings.agent_id) if settings.agent_id else None,
                    api_base=self.config["WECOM_API_BASE"],
                    timeout=(3.05, self.config["WECOM_API_TIMEOUT"]),
                )
            return self._clients[endpoint.name]

    def kf_client_for(self, endpoint: Endpoint, retrying: bool = True) -> WeComClient | None:
        """The 微信客服 API client of an endpoint (no agent id needed), or None without a secret.

        ``retrying=False`` tries each call once: kf sends retry by themselves, knowing which of
        their tries may have reached WeCom (see app.jobs.kf_answers). Tokens are shared either way.
        """
        secret = endpoint.settings.secret or self.config.get("WECOM_KF_SECRET") or ""
        if not secret:
            return None
        key = f"kf:{endpoint.name}:{'retrying' if retrying else 'once'}"
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = WeComClient(
                    endpoint.settings.receive_id or self.config["WECOM_CORP_ID"],
                    secret,
                    self.store,
                    api_base=self.config["WECOM_API_BASE"],
                    timeout=(3.05, self.config["WECOM_API_TIMEOUT"]),
                    retry=None if retrying else RetryPolicy(attempts=1),
                )
            return self._clients[key]

    # -- per request ------------------------------------------------------------------------------
    @staticmethod
    def parse(plaintext: str) -> dict[str, Any]:
        return parse_message(plaintext)

    def respond(
        self, endpoint: Endpoint, message: dict[str, Any], received_at: float
    ) -> str | None:
        """The encrypted passive reply for one callback, or None for an empty answer.

        A kf_msg_or_event is a doorbell: answered empty at once, the pull runs in the background.
        """
        if is_doorbell(message):
            self.puller.notify(endpoint, message)
            return None
        return self._runtime_parts()[2].respond(endpoint, message, received_at)

    @staticmethod
    def render_reply(endpoint: Endpoint, message: dict[str, Any], reply: Reply) -> str:
        return reply.render(
            to_user=str(message.get("FromUserName", "")),
            from_user=endpoint.receive_id or str(message.get("ToUserName", "")),
            create_time=int(time.time()),
        )

    @staticmethod
    def encrypt_reply(endpoint: Endpoint, plain: str) -> str:
        return endpoint.crypto.encrypt_reply(plain)

    def health(self) -> tuple[int, str]:
        """(HTTP status, JSON body) for /healthz: 503 when the store cannot be read."""
        report: dict[str, Any] = {
            "status": "ok",
            "endpoints": sorted(self.endpoints),
            "development_profile": self.dev_profile,
        }
        try:
            dead = len(self.store.list_jobs(JobState.DEAD, DEAD_LETTERS_SHOWN))
        except Exception as exc:
            log.error("health check: the store cannot be read: %s", exc)
            report["status"] = "store unavailable"
            return 503, json.dumps(report)
        report["dead_letters"] = dead if dead < DEAD_LETTERS_SHOWN else f"{dead}+"
        return 200, json.dumps(report)
