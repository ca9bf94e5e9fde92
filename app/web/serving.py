"""What gunicorn.conf.py uses: the preflight check in the master, the default bind, the logger.

The master never imports the application (the gevent workers must patch before it is loaded, see
``preload_app``), so the preflight builds it once in a child process: ``python -m app --check``.
A bad setting then stops the master before it forks, with one line naming the setting, and the
start-up summary is printed once instead of once per worker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from gunicorn.glogging import Logger

from app.settings import from_environment
from app.web.logs import DATE_FORMAT, LOG_FORMAT, SERVICE_LOGGER, formatter

#: Set in the master's environment once the preflight passed: a config reload skips it.
PREFLIGHT_DONE = "WECOM_PREFLIGHT_DONE"
PREFLIGHT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Preflight:
    development_profile: bool = False


def preflight() -> Preflight:
    """Build the app once in a child process; on a bad setting print its one line and exit 2."""
    if os.environ.get(PREFLIGHT_DONE):
        return Preflight(development_profile=os.environ[PREFLIGHT_DONE] == "development")
    env = dict(os.environ)
    # The child must import what the workers will: the handler modules on gunicorn's path.
    env["PYTHONPATH"] = os.pathsep.join(path or os.getcwd() for path in sys.path)
    result = subprocess.run(
        [sys.executable, "-m", "app", "--check"],
        env=env,
        stdout=subprocess.PIPE,
        timeout=PREFLIGHT_TIMEOUT,
        check=False,
    )  # its stderr (the summary, or the one error line) goes straight to ours
    if result.returncode != 0:
        raise SystemExit(result.returncode)
    try:
        report = json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {}
    found = Preflight(development_profile=bool(report.get("development_profile")))
    os.environ[PREFLIGHT_DONE] = "development" if found.development_profile else "production"
    return found


def default_bind(development_profile: bool, environ: dict[str, str] | None = None) -> str:
    """``GUNICORN_BIND`` when given; else ``PORT`` (8000) on all interfaces, or on 127.0.0.1 only
    for the development profile, whose keys are public."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    explicit = environ.get("GUNICORN_BIND")
    if explicit:
        return explicit
    host = "127.0.0.1" if development_profile else "0.0.0.0"
    return f"{host}:{environ.get('PORT', '8000')}"


def log_format_from_environment(environ: dict[str, str] | None = None) -> str:
    """WECOM_LOG_FORMAT for gunicorn's own lines: "json" or "text" (the preflight has already
    stopped the master on a value that is neither)."""
    value = from_environment(environ).get("WECOM_LOG_FORMAT", "")
    return "json" if value.strip().lower() == "json" else "text"


def default_timeout(environ: dict[str, str] | None = None) -> int:
    """gunicorn's ``timeout``: ``GUNICORN_TIMEOUT`` when given, else half the job lease (10 to
    30 s). Under gevent it only catches a worker whose event loop is stuck (a handler burning the
    CPU); such a worker must be killed, and its jobs released (``child_exit``), before the leases
    it can no longer renew run out: otherwise another worker takes the job over while the first
    is still stuck on it, and both are stuck at once. Leases are renewed every third of their
    length, so they run out no sooner than two thirds of it after the loop stopped."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    explicit = environ.get("GUNICORN_TIMEOUT")
    if explicit:
        return int(explicit)
    from app.settings import load_settings

    try:
        lease = load_settings(environ=environ).lease_seconds
    except Exception:  # the preflight reports bad settings; this only picks a default
        return 30
    return max(10, min(30, int(lease / 2)))


def release_worker_leases(pid: int) -> int:
    """In gunicorn's master, when worker ``pid`` has exited (``child_exit``): end the leases of
    its jobs now, so the other workers take them over within a sweep (about a second) instead of
    after ``WECOM_LEASE_SECONDS``. Never raises: the master must survive a failing store."""
    from app.infra.store import open_store
    from app.jobs.leases import owner_prefix
    from app.settings import load_settings

    log = logging.getLogger("app.serving")
    try:
        settings = load_settings()
        store = open_store(settings.store_url, prefix=settings.redis_prefix)
        try:
            released = store.release_leases(owner_prefix(pid), time.time())
        finally:
            store.close()
    except NotImplementedError:
        return 0  # this store cannot: the leases run out instead
    except Exception as exc:
        log.error("could not release the leases of worker %d: %s: %s", pid, type(exc).__name__, exc)
        return 0
    if released:
        log.warning(
            "worker %d exited with %d jobs in hand; other workers take them now", pid, released
        )
    return released


class GunicornLogger(Logger):
    """gunicorn's logger with the service's format, sharing its error stream with the service's
    own logger (``logger_class`` in gunicorn.conf.py). With WECOM_LOG_FORMAT=json its error and
    access lines are JSON objects too."""

    error_fmt = LOG_FORMAT
    datefmt = DATE_FORMAT

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if log_format_from_environment() == "json":
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter("json"))
        service = logging.getLogger(SERVICE_LOGGER)
        for handler in list(service.handlers):
            if getattr(handler, "_gunicorn", False):
                service.removeHandler(handler)
        for handler in self.error_log.handlers:
            if getattr(handler, "_gunicorn", False):
                service.addHandler(handler)
        service.propagate = False
