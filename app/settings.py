"""Settings: defaults, then the environment, then the mapping a caller passes to ``create_app``.

Every setting is a Flask config key of the same name (``WECOM_TOKEN`` …). A bad value raises
:class:`SettingError`, whose message names the setting, so start-up stops with a clear line.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The guide passes these to Docker; they mean the token and the corp id.
ENV_ALIASES = {"T_TOKEN": "WECOM_TOKEN", "C_TOKEN": "WECOM_CORP_ID"}

DEFAULTS: dict[str, Any] = {
    "WECOM_TOKEN": "",
    "WECOM_AES_KEY": "",
    "WECOM_CORP_ID": "",
    "WECOM_PATH": "/",
    "WECOM_AGENT_ID": "",
    "WECOM_SECRET": "",
    "WECOM_HANDLERS": "app.handlers.demo",
    "WECOM_MAX_BODY": 256 * 1024,
    "WECOM_ENDPOINTS": "",
    "WECOM_REPLY_DEADLINE": 4.0,
    "WECOM_STORE": "sqlite:///instance/wecom-state.db",
    "WECOM_API_BASE": "https://qyapi.weixin.qq.com/cgi-bin/",
    "WECOM_API_TIMEOUT": 10.0,
    "WECOM_DELIVERY_ATTEMPTS": 8,
    "WECOM_LEASE_SECONDS": 30.0,
    "WECOM_HANDLER_TIMEOUT": 600.0,
    "WECOM_FORWARD_URL": "",
    "WECOM_FORWARD_TIMEOUT": 30.0,
    "WECOM_FORWARD_FALLBACK": "响应错误",
    "WECOM_KF_TOKEN": "",
    "WECOM_KF_AES_KEY": "",
    "WECOM_KF_PATH": "/kf",
    "WECOM_KF_SECRET": "",
    "WECOM_KF_WELCOME": "",
    "WECOM_KF_HANDLERS": "",
    "WECOM_KF_HISTORY_SECONDS": 600,
    "WECOM_DEV_PROFILE": "",
    "WECOM_LOG_LEVEL": "INFO",
    # The intelligent bot and the LLM backend: parsed by app.bot_settings.
    "WECOM_BOT_TOKEN": "",
    "WECOM_BOT_AES_KEY": "",
    "WECOM_BOT_PATH": "/bot",
    "WECOM_BOT_HANDLERS": "",
    "WECOM_BOT_WELCOME": "",
    "WECOM_BOT_STREAM_WINDOW": 330.0,
    "WECOM_LLM_BASE_URL": "",
    "WECOM_LLM_API_KEY": "",
    "WECOM_LLM_MODEL": "",
    "WECOM_LLM_SYSTEM_PROMPT": "",
    "WECOM_LLM_HISTORY": 10,
    "WECOM_LLM_TIMEOUT": 120.0,
}

#: The development profile: fixed, public, obviously fake keys so a newcomer sees the service work.
DEV_PROFILE = {
    "WECOM_TOKEN": "devtoken",
    "WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WECOM_CORP_ID": "wwdevcorp0000000",
    "WECOM_BOT_TOKEN": "devtoken",
    "WECOM_BOT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}

_INT_SETTINGS = {
    "WECOM_MAX_BODY": (1024, 64 * 1024 * 1024),
    "WECOM_DELIVERY_ATTEMPTS": (1, 100),
    "WECOM_KF_HISTORY_SECONDS": (0, 3 * 24 * 3600),
}
_FLOAT_SETTINGS = {
    "WECOM_REPLY_DEADLINE": (0.1, 4.9),
    "WECOM_API_TIMEOUT": (0.5, 120.0),
    "WECOM_FORWARD_TIMEOUT": (0.5, 600.0),
    "WECOM_LEASE_SECONDS": (1.0, 3600.0),
    "WECOM_HANDLER_TIMEOUT": (1.0, 86400.0),
}
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_AES_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}")


class SettingError(ValueError):
    """A setting has a bad value; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


@dataclass(frozen=True)
class EndpointSettings:
    """One callback URL: its own path, Token, EncodingAESKey and receiveid."""

    name: str
    path: str
    token: str
    aes_key: str
    receive_id: str
    kind: str = "app"  # "app" (self-built app) or "kf" (微信客服)
    handlers: str = ""
    agent_id: str = ""
    secret: str = ""


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``WECOM_*`` variables (and the guide's aliases) found in the environment."""
    environ = os.environ if environ is None else environ
    found = {key: value for key, value in environ.items() if key.startswith("WECOM_")}
    for alias, name in ENV_ALIASES.items():
        if alias in environ and name not in found:
            found[name] = environ[alias]
    return found


def _validate_token(setting: str, value: str) -> None:
    if not value:
        raise SettingError(setting, "is required (the Token from the WeCom admin console)")
    if not _TOKEN_RE.fullmatch(value):
        raise SettingError(setting, "must be 1 to 32 letters or digits")


def _validate_aes_key(setting: str, value: str) -> None:
    if not value:
        raise SettingError(setting, "is required (the 43-character EncodingAESKey)")
    if not _AES_KEY_RE.fullmatch(value):
        raise SettingError(
            setting, f"must be exactly 43 letters or digits, got {len(value)} characters"
        )
    from app.wecom.aes import decode_aes_key
    from app.wecom.errors import InvalidAESKeyError

    try:
        decode_aes_key(value)
    except InvalidAESKeyError as exc:
        raise SettingError(setting, exc.detail) from None


def _validate_path(setting: str, value: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or " " in value:
        raise SettingError(setting, f"must be a URL path starting with '/', got {value!r}")
    return value.rstrip("/") or "/"


def normalise(config: dict[str, Any]) -> None:
    """Coerce numbers in place and check ranges, raising SettingError on the first bad one."""
    numbers = [(key, int, "a whole number", "", limits) for key, limits in _INT_SETTINGS.items()]
    numbers += [
        (key, float, "a number of seconds", " seconds", limits)
        for key, limits in _FLOAT_SETTINGS.items()
    ]
    for key, kind, what, unit, (low, high) in numbers:
        try:
            value = kind(config[key])
        except (TypeError, ValueError):
            raise SettingError(key, f"must be {what}, got {config[key]!r}") from None
        if not low <= value <= high:
            raise SettingError(key, f"must be between {low} and {high}{unit}, got {value}")
        config[key] = value
    for key in ("WECOM_FORWARD_URL", "WECOM_API_BASE"):
        url = str(config.get(key) or "")
        if url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise SettingError(key, f"must be an http:// or https:// URL, got {url!r}")
    agent_id = str(config.get("WECOM_AGENT_ID") or "")
    if agent_id and not agent_id.isdigit():
        raise SettingError("WECOM_AGENT_ID", f"must be the app's numeric AgentId, got {agent_id!r}")


def uses_dev_profile(config: Mapping[str, Any]) -> bool:
    """True when nothing identifies a real app: then the development profile fills the keys."""
    if str(config.get("WECOM_DEV_PROFILE", "")).lower() in ("1", "true", "yes"):
        return True
    keys = (
        "WECOM_TOKEN",
        "WECOM_AES_KEY",
        "WECOM_CORP_ID",
        "WECOM_ENDPOINTS",
        "WECOM_KF_TOKEN",
        "WECOM_BOT_TOKEN",
        "WECOM_BOT_AES_KEY",
    )
    return not any(config.get(key) for key in keys)


def endpoint_settings(config: Mapping[str, Any]) -> list[EndpointSettings]:
    """Every callback endpoint the configuration describes, validated."""
    endpoints: list[EndpointSettings] = []
    corp_id = str(config.get("WECOM_CORP_ID") or "")
    if config.get("WECOM_TOKEN") or config.get("WECOM_AES_KEY"):
        _validate_token("WECOM_TOKEN", config["WECOM_TOKEN"])
        _validate_aes_key("WECOM_AES_KEY", config["WECOM_AES_KEY"])
        if not corp_id:
            raise SettingError("WECOM_CORP_ID", "is required (the CorpID, used as receiveid)")
        endpoints.append(
            EndpointSettings(
                name="app",
                path=_validate_path("WECOM_PATH", config["WECOM_PATH"]),
                token=config["WECOM_TOKEN"],
                aes_key=config["WECOM_AES_KEY"],
                receive_id=corp_id,
                handlers=config["WECOM_HANDLERS"],
                agent_id=str(config.get("WECOM_AGENT_ID") or ""),
                secret=config.get("WECOM_SECRET") or "",
            )
        )
    if config.get("WECOM_KF_TOKEN") or config.get("WECOM_KF_AES_KEY"):
        _validate_token("WECOM_KF_TOKEN", config["WECOM_KF_TOKEN"])
        _validate_aes_key("WECOM_KF_AES_KEY", config["WECOM_KF_AES_KEY"])
        if not corp_id:
            raise SettingError(
                "WECOM_CORP_ID", "is required for 微信客服 (receiveid is the CorpID)"
            )
        endpoints.append(
            EndpointSettings(
                name="kf",
                path=_validate_path("WECOM_KF_PATH", config["WECOM_KF_PATH"]),
                token=config["WECOM_KF_TOKEN"],
                aes_key=config["WECOM_KF_AES_KEY"],
                receive_id=corp_id,
                kind="kf",
                handlers=config.get("WECOM_KF_HANDLERS") or "",
                secret=config.get("WECOM_KF_SECRET") or config.get("WECOM_SECRET") or "",
            )
        )
    endpoints.extend(_extra_endpoints(config.get("WECOM_ENDPOINTS") or "", corp_id))
    names = [endpoint.name for endpoint in endpoints]
    if len(set(names)) != len(names):
        raise SettingError("WECOM_ENDPOINTS", f"endpoint names must be unique, got {names}")
    paths: dict[str, str] = {}
    for endpoint in endpoints:
        if endpoint.path in paths:
            raise SettingError(
                "WECOM_ENDPOINTS",
                f"endpoints {paths[endpoint.path]!r} and {endpoint.name!r} "
                f"share path {endpoint.path}",
            )
        paths[endpoint.path] = endpoint.name
    if not endpoints and not _has_bot(config):
        raise SettingError("WECOM_TOKEN", "no callback endpoint is configured")
    return endpoints


def _is_aibot(item: Any) -> bool:
    """A WECOM_ENDPOINTS entry of the intelligent bot: app.bot_settings parses those."""
    return isinstance(item, dict) and item.get("kind") == "aibot"


def _has_bot(config: Mapping[str, Any]) -> bool:
    if config.get("WECOM_BOT_TOKEN") or config.get("WECOM_BOT_AES_KEY"):
        return True
    raw = config.get("WECOM_ENDPOINTS") or ""
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return False
    return isinstance(items, list) and any(_is_aibot(item) for item in items)


def _extra_endpoints(raw: str | list, corp_id: str) -> list[EndpointSettings]:
    """``WECOM_ENDPOINTS``: a JSON list of objects with name, path, token, aes_key, receive_id."""
    if not raw:
        return []
    setting = "WECOM_ENDPOINTS"
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise SettingError(setting, f"is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise SettingError(setting, "must be a JSON list of endpoint objects")
    result = []
    known = {
        "name",
        "path",
        "token",
        "aes_key",
        "receive_id",
        "kind",
        "handlers",
        "agent_id",
        "secret",
    }
    for index, item in enumerate(items):
        where = f"{setting}[{index}]"
        if not isinstance(item, dict):
            raise SettingError(where, "must be an object")
        if _is_aibot(item):
            continue
        unknown = set(item) - known
        if unknown:
            raise SettingError(where, f"unknown keys {sorted(unknown)}")
        name = str(item.get("name") or "")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
            raise SettingError(f"{where}.name", "must be a short lower-case identifier")
        _validate_token(f"{where}.token", str(item.get("token") or ""))
        _validate_aes_key(f"{where}.aes_key", str(item.get("aes_key") or ""))
        kind = item.get("kind", "app")
        if kind not in ("app", "kf"):
            raise SettingError(f"{where}.kind", "must be 'app', 'kf' or 'aibot'")
        receive_id = item.get("receive_id", corp_id)
        if receive_id is None:
            raise SettingError(f"{where}.receive_id", "must be a string ('' for the bot)")
        result.append(
            EndpointSettings(
                name=name,
                path=_validate_path(f"{where}.path", item.get("path", f"/{name}")),
                token=item["token"],
                aes_key=item["aes_key"],
                receive_id=str(receive_id),
                kind=kind,
                handlers=str(item.get("handlers") or ""),
                agent_id=str(item.get("agent_id") or ""),
                secret=str(item.get("secret") or ""),
            )
        )
    return result
