"""Where the simulator finds the running service: the way the service chose its address.

Resolution order (the first one set wins):

1. ``--url`` on the command line;
2. ``WECOM_SIMULATE_URL``;
3. ``GUNICORN_BIND``, when it is ``HOST:PORT`` (gunicorn.conf.py prefers it over ``PORT``;
   ``python -m app -p N`` sets it for gunicorn);
4. ``PORT`` (gunicorn.conf.py's port, also the Docker image's);
5. ``FLASK_RUN_PORT`` (with ``FLASK_RUN_HOST``), for a service started with ``flask run``;
6. ``http://127.0.0.1:8000``, where ``scripts/run.sh`` serves. (``flask run`` without
   ``FLASK_RUN_PORT`` serves :5000: pass ``--url http://127.0.0.1:5000``.)

A wildcard bind address (``0.0.0.0``, ``::``) becomes the loopback address. Pure: the caller
passes the environment.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

DEFAULT_URL: Final = "http://127.0.0.1:8000"
SOURCES: Final = ("--url", "WECOM_SIMULATE_URL", "GUNICORN_BIND", "PORT", "FLASK_RUN_PORT")

_URL_RE = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}


@dataclasses.dataclass(frozen=True)
class ServiceURL:
    """The service's base URL and which setting chose it (for messages)."""

    url: str
    source: str

    def describe(self) -> str:
        if self.source == "default":
            return f"{self.url} (the default: none of {', '.join(SOURCES)} is set)"
        return f"{self.url} (from {self.source})"


def resolve_service_url(option: str | None, environ: Mapping[str, str]) -> ServiceURL:
    """The base URL of the service to simulate against; ValueError names a bad setting."""
    if option:
        return ServiceURL(_checked_url("--url", option), "--url")
    if environ.get("WECOM_SIMULATE_URL"):
        url = _checked_url("WECOM_SIMULATE_URL", environ["WECOM_SIMULATE_URL"])
        return ServiceURL(url, "WECOM_SIMULATE_URL")
    bind = _host_port(environ.get("GUNICORN_BIND", ""))
    if bind is not None:
        return ServiceURL(_url(*bind, "GUNICORN_BIND"), "GUNICORN_BIND")
    if environ.get("PORT"):
        return ServiceURL(_url("127.0.0.1", environ["PORT"], "PORT"), "PORT")
    if environ.get("FLASK_RUN_PORT"):
        host = environ.get("FLASK_RUN_HOST") or "127.0.0.1"
        return ServiceURL(_url(host, environ["FLASK_RUN_PORT"], "FLASK_RUN_PORT"), "FLASK_RUN_PORT")
    return ServiceURL(DEFAULT_URL, "default")


def _checked_url(source: str, value: str) -> str:
    value = value.strip()
    if not _URL_RE.fullmatch(value):
        raise ValueError(f"{source}: must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _host_port(bind: str) -> tuple[str, str] | None:
    """(host, port) of a gunicorn bind of the form HOST:PORT; None for unix:, fd:// or no port."""
    bind = bind.strip()
    if not bind or bind.startswith(("unix:", "fd://")):
        return None
    host, sep, port = bind.rpartition(":")
    if not sep or host.endswith(":") or (":" in host and not host.startswith("[")):
        return None  # a bare IPv6 address without a port
    return host, port


def _url(host: str, port: str, source: str) -> str:
    port = port.strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{source}: must name a port between 1 and 65535, got {port!r}")
    host = _WILDCARDS.get(host.strip(), host.strip())
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{int(port)}"
