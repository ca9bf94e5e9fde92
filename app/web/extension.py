"""The Flask extension (``app.extensions["wecom"]``): the composition root of the service.

:meth:`WeComService.init_app` builds every endpoint from the :class:`~app.settings.Settings`
(loading handler modules, so a bad one stops start-up), checks that the store opens, and mounts
one blueprint per endpoint. The job engine belongs to one worker process: it is made on first use
in each process (after gunicorn forks) and started by ``post_worker_init`` or the first request.
"""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from app.infra.store import Store, open_store
from app.jobs.engine import JobEngine
from app.jobs.leases import check_timestamp_window
from app.routing.endpoints import Endpoint, build_endpoint
from app.settings import SettingError, Settings
from app.web.blueprint import callback_blueprint
from app.web.bot_extension import install_bots
from app.web.request_input import stamp_arrival

log = logging.getLogger(__name__)


class WeComService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoints: dict[str, Endpoint] = {}
        self._engine: JobEngine | None = None
        self._engine_pid: int | None = None
        self._engine_lock = threading.Lock()
        self._store_error: str | None = None

    @property
    def dev_profile(self) -> bool:
        return self.settings.development_profile

    def init_app(self, app: Flask) -> None:
        settings = self.settings
        check_timestamp_window(settings.timestamp_window)
        check_store(settings.store_url, settings.redis_prefix)
        for endpoint_settings in settings.endpoints:
            endpoint = build_endpoint(
                endpoint_settings,
                settings.forward,
                kf_welcome=settings.kf_welcome,
                handler_timeout=settings.handler_timeout,
            )
            self.endpoints[endpoint.name] = endpoint
            app.register_blueprint(callback_blueprint(endpoint.name, endpoint_settings.path))
        app.config["MAX_CONTENT_LENGTH"] = settings.max_body
        app.wsgi_app = stamp_arrival(app.wsgi_app)  # type: ignore[method-assign]
        app.extensions["wecom"] = self
        app.before_request(self.start_background)
        install_bots(app, self)  # intelligent bots and the LLM backend (app.web.bot_extension)

    # -- the per-process engine ----------------------------------------------------------------
    @property
    def engine(self) -> JobEngine:
        """This process's engine, made on first use (again in a forked child).

        Raises when the store cannot be opened; every request tries again, so a worker that
        booted while the store was unreadable recovers once it is readable (meanwhile callbacks
        get 503 and /healthz says why)."""
        with self._engine_lock:
            if self._engine is None or self._engine_pid != os.getpid():
                try:
                    self._engine = JobEngine(self.settings, self.endpoints)
                except Exception as exc:
                    self._store_failed(exc)
                    raise
                if self._store_error is not None:
                    log.warning("the store can be opened again; accepting callbacks")
                    self._store_error = None
                self._engine_pid = os.getpid()
            return self._engine

    def _store_failed(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if reason != self._store_error:  # one line per distinct failure, not one per request
            log.error(
                "the store cannot be opened (%s); callbacks are answered 503 until it can", reason
            )
        self._store_error = reason

    @property
    def store(self) -> Store:
        return self.engine.store

    def start_background(self) -> None:
        """Start this process's lease keeper and kf sweep; a no-op when they run already, or
        when the store cannot be opened yet (see :attr:`engine`). Called before every request,
        so the common case (started in this process) is two attribute reads."""
        engine = self._engine
        if engine is not None and self._engine_pid == os.getpid() and engine.running:
            return
        try:
            engine = self.engine
        except Exception:
            return
        engine.start()

    def stop_background(self) -> None:
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.stop()


def check_store(url: str, prefix: str) -> None:
    """Open and close the store once: a bad WECOM_STORE URL stops start-up naming it. A store
    that cannot be opened now (a missing volume, permissions) is logged, not fatal: workers
    answer 503 and /healthz reports it until it can be opened."""
    try:
        open_store(url, prefix=prefix).close()
    except ValueError as exc:
        raise SettingError("WECOM_STORE", str(exc).split(": ", 1)[-1]) from None
    except Exception as exc:
        log.error(
            "WECOM_STORE cannot be opened now (%s: %s); callbacks are answered 503 until it can",
            type(exc).__name__,
            exc,
        )
