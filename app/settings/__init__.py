"""One immutable, typed :class:`Settings`, built once by ``create_app`` and passed down.

Where values come from, later winning: :data:`DEFAULTS`, then the ``WECOM_*`` environment
variables (and the guide's ``T_TOKEN``/``C_TOKEN``), then the mapping passed to ``create_app``.
:func:`load_settings` checks every value once and resolves every fallback once; a bad value
raises :class:`SettingError` naming the setting, so start-up stops with one clear line. This
package is the only place that reads ``os.environ`` for the service's own settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.settings import values
from app.settings.bots import BotSettings, bot_settings
from app.settings.endpoints import (
    DEMO_HANDLERS,
    KF_DEMO_HANDLERS,
    EndpointSettings,
    endpoint_settings,
)
from app.settings.values import SettingError

#: The guide passes these to Docker; they mean the token and the corp id.
ENV_ALIASES = {"T_TOKEN": "WECOM_TOKEN", "C_TOKEN": "WECOM_CORP_ID"}

DEFAULTS: dict[str, Any] = {
    "WECOM_PATH": "/",
    "WECOM_MAX_BODY": 256 * 1024,
    "WECOM_TIMESTAMP_WINDOW": 3600,
    "WECOM_REPLY_DEADLINE": 4.0,
    "WECOM_STORE": "sqlite:///instance/wecom-state.db",
    "WECOM_REDIS_PREFIX": "wecom:",
    "WECOM_API_BASE": "https://qyapi.weixin.qq.com/cgi-bin/",
    "WECOM_API_TIMEOUT": 10.0,
    "WECOM_DELIVERY_ATTEMPTS": 8,
    "WECOM_HANDLER_ATTEMPTS": 3,
    "WECOM_LEASE_SECONDS": 30.0,
    "WECOM_HANDLER_TIMEOUT": 600.0,
    "WECOM_FORWARD_TIMEOUT": 30.0,
    "WECOM_FORWARD_FALLBACK": "响应错误",
    "WECOM_FORWARD_MAX_BYTES": 1024 * 1024,
    "WECOM_KF_PATH": "/kf",
    "WECOM_KF_HISTORY_SECONDS": 600,
    "WECOM_LOG_LEVEL": "INFO",
    # The intelligent bot and the LLM backend (app.settings.bots).
    "WECOM_BOT_PATH": "/bot",
    "WECOM_BOT_STREAM_WINDOW": 330.0,
    "WECOM_LLM_HISTORY": 10,
    "WECOM_LLM_TIMEOUT": 120.0,
    "WECOM_LOG_FORMAT": "text",
}

#: The development profile: fixed, public, obviously fake keys so a newcomer sees the service work.
DEV_PROFILE = {
    "WECOM_TOKEN": "devtoken",
    "WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WECOM_CORP_ID": "wwdevcorp0000000",
    "WECOM_BOT_TOKEN": "devtoken",
    "WECOM_BOT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}
#: Any of these names a real app, so the development profile stays off.
_REAL_KEYS = (
    "WECOM_TOKEN",
    "WECOM_AES_KEY",
    "WECOM_CORP_ID",
    "WECOM_ENDPOINTS",
    "WECOM_KF_TOKEN",
    "WECOM_BOT_TOKEN",
    "WECOM_BOT_AES_KEY",
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("TEXT", "JSON")


@dataclass(frozen=True)
class ForwardSettings:
    """``WECOM_FORWARD_*``: answer messages by POSTing them to a business backend."""

    url: str
    timeout: float
    fallback: str
    max_bytes: int = 1024 * 1024

    def __repr__(self) -> str:  # the URL may carry credentials
        return f"ForwardSettings(timeout={self.timeout:g})"


@dataclass(frozen=True)
class Settings:
    endpoints: tuple[EndpointSettings, ...]
    development_profile: bool
    corp_id: str
    reply_deadline: float
    max_body: int
    timestamp_window: int
    store_url: str
    redis_prefix: str
    api_base: str
    api_timeout: float
    delivery_attempts: int
    handler_attempts: int
    lease_seconds: float
    handler_timeout: float
    kf_welcome: str
    kf_history_seconds: int
    log_level: str
    forward: ForwardSettings | None = None
    #: The intelligent bots and the LLM backend.
    bots: BotSettings = field(default_factory=BotSettings)
    #: The admin surface (/metrics, /console); empty: both answer 404.
    admin_token: str = ""
    console_show_content: bool = False
    log_format: str = "text"  # "text" or "json"
    #: FORWARDED_ALLOW_IPS (gunicorn's setting, read here too): proxies whose headers count.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)

    def endpoint(self, name: str) -> EndpointSettings:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    def __repr__(self) -> str:  # the store URL and the endpoints' keys are secrets
        names = ", ".join(endpoint.name for endpoint in self.endpoints)
        return f"Settings(endpoints=[{names}], development_profile={self.development_profile})"


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``WECOM_*`` variables (and the guide's aliases) found in the environment."""
    environ = os.environ if environ is None else environ
    found = {key: value for key, value in environ.items() if key.startswith("WECOM_")}
    for alias, name in ENV_ALIASES.items():
        if alias in environ and name not in found:
            found[name] = environ[alias]
    return found


#: Real secrets or a real backend: never paired with the development profile's public keys.
_REAL_PARTNERS = (
    "WECOM_SECRET",
    "WECOM_AGENT_ID",
    "WECOM_KF_SECRET",
    "WECOM_FORWARD_URL",
    "WECOM_LLM_API_KEY",
)


def uses_dev_profile(raw: Mapping[str, Any]) -> bool:
    """True when nothing identifies a real app (or ``WECOM_DEV_PROFILE=1``).

    Refused (a SettingError) when the profile's public keys would meet real settings: a
    secret, an agent id or a backend URL without the keys of a real app, or
    ``WECOM_DEV_PROFILE=1`` beside real keys. Anyone could then sign callbacks for that
    secret's app or that backend.
    """
    real_keys = [key for key in _REAL_KEYS if values.text(raw, key)]
    if values.flag(raw, "WECOM_DEV_PROFILE"):
        if real_keys:
            raise SettingError(
                "WECOM_DEV_PROFILE",
                f"=1 forces the public test keys, but real keys are set ({', '.join(real_keys)}); "
                "unset one or the other",
            )
        development = True
    else:
        development = not real_keys
    partners = [key for key in _REAL_PARTNERS if values.text(raw, key)]
    if development and partners:
        raise SettingError(
            ", ".join(partners),
            "set without an app's WECOM_TOKEN, WECOM_AES_KEY and WECOM_CORP_ID: the development "
            "profile's public test keys must not be paired with a real secret or backend; "
            "set the app's keys too, or unset these",
        )
    return development


def _redis_prefix(raw: Mapping[str, Any]) -> str:
    prefix = str(raw.get("WECOM_REDIS_PREFIX") or "")
    if "{" in prefix or "}" in prefix:  # braces would change the keys' Redis Cluster hash slot
        raise values.SettingError("WECOM_REDIS_PREFIX", "must not contain { or }")
    return prefix


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the environment, then ``overrides``: checked, resolved, frozen."""
    raw: dict[str, Any] = {**DEFAULTS, **from_environment(environ), **(overrides or {})}
    proxies = (overrides or {}).get("FORWARDED_ALLOW_IPS") or (
        os.environ if environ is None else environ
    ).get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    development = uses_dev_profile(raw)
    if development:
        raw.update(DEV_PROFILE)
    forward_url = values.url(raw, "WECOM_FORWARD_URL")
    forward = None
    if forward_url:
        forward = ForwardSettings(
            url=forward_url,
            timeout=values.number(raw, "WECOM_FORWARD_TIMEOUT", float, 0.5, 600.0),
            fallback=str(raw.get("WECOM_FORWARD_FALLBACK") or ""),
            max_bytes=values.number(raw, "WECOM_FORWARD_MAX_BYTES", int, 1024, 64 * 1024 * 1024),
        )
    endpoints = endpoint_settings(raw, forwarding=forward is not None)
    bots = bot_settings(raw, {endpoint.path: endpoint.name for endpoint in endpoints})
    if not endpoints and not bots.bots:
        raise SettingError("WECOM_TOKEN", "no callback endpoint is configured")
    return Settings(
        endpoints=endpoints,
        bots=bots,
        development_profile=development,
        corp_id=values.text(raw, "WECOM_CORP_ID"),
        reply_deadline=values.number(raw, "WECOM_REPLY_DEADLINE", float, 0.1, 4.9),
        max_body=values.number(raw, "WECOM_MAX_BODY", int, 1024, 64 * 1024 * 1024),
        # The upper bound that matters, the dedup retention, is checked by app.jobs.leases.
        timestamp_window=values.number(raw, "WECOM_TIMESTAMP_WINDOW", int, 0, 365 * 24 * 3600),
        store_url=values.text(raw, "WECOM_STORE"),
        redis_prefix=_redis_prefix(raw),
        api_base=values.url(raw, "WECOM_API_BASE"),
        api_timeout=values.number(raw, "WECOM_API_TIMEOUT", float, 0.5, 120.0),
        delivery_attempts=values.number(raw, "WECOM_DELIVERY_ATTEMPTS", int, 1, 100),
        handler_attempts=values.number(raw, "WECOM_HANDLER_ATTEMPTS", int, 1, 100),
        lease_seconds=values.number(raw, "WECOM_LEASE_SECONDS", float, 1.0, 3600.0),
        handler_timeout=values.number(raw, "WECOM_HANDLER_TIMEOUT", float, 1.0, 86400.0),
        kf_welcome=str(raw.get("WECOM_KF_WELCOME") or ""),
        kf_history_seconds=values.number(raw, "WECOM_KF_HISTORY_SECONDS", int, 0, 3 * 24 * 3600),
        log_level=values.choice(raw, "WECOM_LOG_LEVEL", LOG_LEVELS),
        forward=forward,
        admin_token=values.admin_token(raw, "WECOM_ADMIN_TOKEN"),
        console_show_content=values.flag(raw, "WECOM_CONSOLE_SHOW_CONTENT"),
        log_format=values.choice(raw, "WECOM_LOG_FORMAT", LOG_FORMATS).lower(),
        trusted_proxies=values.addresses("FORWARDED_ALLOW_IPS", str(proxies)),
    )


__all__ = [
    "DEFAULTS",
    "DEMO_HANDLERS",
    "DEV_PROFILE",
    "KF_DEMO_HANDLERS",
    "LOG_FORMATS",
    "EndpointSettings",
    "ForwardSettings",
    "SettingError",
    "Settings",
    "from_environment",
    "load_settings",
]
