"""The callback endpoints a configuration describes, with every fallback resolved once.

The single app (``WECOM_TOKEN`` …), the 微信客服 callback (``WECOM_KF_TOKEN`` …) and any number of
``WECOM_ENDPOINTS`` entries each become one :class:`EndpointSettings`. Fallbacks resolved here, and
nowhere else: receiveid → CorpID, kf secret → app secret, handler modules → the forwarder (when
``WECOM_FORWARD_URL`` is set) → the demo bots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.settings import values
from app.settings.values import SettingError

DEMO_HANDLERS = "app.handlers.demo"
KF_DEMO_HANDLERS = "app.handlers.kf_demo"
KINDS = ("app", "kf")
#: WECOM_ENDPOINTS entries of this kind are the intelligent bot's (app.settings.bots).
BOT_KIND = "aibot"
ENDPOINT_KEYS = frozenset(
    {"name", "path", "token", "aes_key", "receive_id", "kind", "handlers", "agent_id", "secret"}
)


@dataclass(frozen=True)
class EndpointSettings:
    """One callback URL: its own path, Token, EncodingAESKey and receiveid.

    ``handlers`` / ``kf_handlers`` name the modules whose routers answer messages and 微信客服
    items; an empty name means the forwarder answers (``WECOM_FORWARD_URL``). ``handlers_setting``
    names the setting that chose ``handlers``, for error messages.
    """

    name: str
    path: str
    token: str
    aes_key: str
    receive_id: str
    kind: str = "app"  # "app" (self-built app) or "kf" (微信客服)
    handlers: str = DEMO_HANDLERS
    kf_handlers: str = KF_DEMO_HANDLERS
    agent_id: str = ""
    secret: str = ""
    #: The secret for the 微信客服 API (kf_msg_or_event may arrive on an app's endpoint too).
    kf_secret: str = ""
    handlers_setting: str = "WECOM_HANDLERS"
    kf_handlers_setting: str = "WECOM_KF_HANDLERS"

    @property
    def demo_answers_messages(self) -> bool:
        """No handlers module was named for this app endpoint: the demo bot answers (or, with
        WECOM_LLM_BASE_URL, the model answers text)."""
        return self.kind == "app" and self.handlers == DEMO_HANDLERS

    @property
    def demo_answers_kf(self) -> bool:
        return self.kf_handlers == KF_DEMO_HANDLERS

    def __repr__(self) -> str:  # never show the keys
        return f"EndpointSettings(name={self.name!r}, path={self.path!r}, kind={self.kind!r})"


def _handler_modules(
    raw: Mapping[str, Any], own: str, own_setting: str, forwarding: bool
) -> tuple[str, str]:
    """(module, the setting that named it): the endpoint's own module, else the forwarder when
    forwarding (empty name), else WECOM_HANDLERS, else the demo."""
    if own:
        return values.module_name(own_setting, own), own_setting
    if forwarding:
        return "", "WECOM_FORWARD_URL"
    default = values.module_name("WECOM_HANDLERS", values.text(raw, "WECOM_HANDLERS"))
    return default or DEMO_HANDLERS, "WECOM_HANDLERS"


def _kf_modules(raw: Mapping[str, Any], own: str, own_setting: str, forwarding: bool) -> tuple:
    if own:
        return values.module_name(own_setting, own), own_setting
    configured = values.module_name("WECOM_KF_HANDLERS", values.text(raw, "WECOM_KF_HANDLERS"))
    if configured:
        return configured, "WECOM_KF_HANDLERS"
    if forwarding:
        return "", "WECOM_FORWARD_URL"
    return KF_DEMO_HANDLERS, "WECOM_KF_HANDLERS"


def endpoint_settings(raw: Mapping[str, Any], forwarding: bool) -> tuple[EndpointSettings, ...]:
    """Every callback endpoint the configuration describes, validated."""
    endpoints: list[EndpointSettings] = []
    corp_id = values.text(raw, "WECOM_CORP_ID")
    app_secret = values.text(raw, "WECOM_SECRET")
    kf_default = _kf_modules(raw, "", "", forwarding)
    keys = _keys(raw, "WECOM_TOKEN", "WECOM_AES_KEY", corp_id)
    if keys:
        token, key = keys
        explicit = values.text(raw, "WECOM_HANDLERS")
        handlers = _handler_modules(raw, explicit, "WECOM_HANDLERS", forwarding)
        endpoints.append(
            EndpointSettings(
                name="app",
                path=values.path("WECOM_PATH", raw.get("WECOM_PATH", "/")),
                token=token,
                aes_key=key,
                receive_id=corp_id,
                handlers=handlers[0],
                handlers_setting=handlers[1],
                kf_handlers=kf_default[0],
                kf_handlers_setting=kf_default[1],
                agent_id=_agent_id("WECOM_AGENT_ID", values.text(raw, "WECOM_AGENT_ID")),
                secret=app_secret,
                kf_secret=app_secret or values.text(raw, "WECOM_KF_SECRET"),
            )
        )
    keys = _keys(raw, "WECOM_KF_TOKEN", "WECOM_KF_AES_KEY", corp_id)
    if keys:
        token, key = keys
        kf_secret = values.text(raw, "WECOM_KF_SECRET") or app_secret
        endpoints.append(
            EndpointSettings(
                name="kf",
                path=values.path("WECOM_KF_PATH", raw.get("WECOM_KF_PATH", "/kf")),
                token=token,
                aes_key=key,
                receive_id=corp_id,
                kind="kf",
                handlers="",
                handlers_setting="",
                kf_handlers=kf_default[0],
                kf_handlers_setting=kf_default[1],
                secret=kf_secret,
                kf_secret=kf_secret,
            )
        )
    endpoints.extend(_extra_endpoints(raw, corp_id, forwarding))
    _check_unique(endpoints)
    return tuple(endpoints)


def _keys(
    raw: Mapping[str, Any], token_setting: str, key_setting: str, corp_id: str
) -> tuple[str, str] | None:
    """(Token, EncodingAESKey) of a callback configured by these two settings, checked; None
    when neither is set. Its receiveid is the CorpID, so that is required too."""
    if not (values.text(raw, token_setting) or values.text(raw, key_setting)):
        return None
    token = values.token(token_setting, values.text(raw, token_setting))
    key = values.aes_key(key_setting, values.text(raw, key_setting))
    if not corp_id:
        raise SettingError("WECOM_CORP_ID", "is required (the CorpID, used as receiveid)")
    return token, key


def _agent_id(setting: str, value: str) -> str:
    if value and not value.isdigit():
        raise SettingError(setting, f"must be the app's numeric AgentId, got {value!r}")
    return value


def _check_unique(endpoints: list[EndpointSettings]) -> None:
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


def _extra_endpoints(
    raw: Mapping[str, Any], corp_id: str, forwarding: bool
) -> list[EndpointSettings]:
    """``WECOM_ENDPOINTS``: a JSON list of endpoint objects (or a list, from a mapping)."""
    setting = "WECOM_ENDPOINTS"
    items = values.endpoint_items(raw, setting)
    app_secret = values.text(raw, "WECOM_SECRET")
    result = []
    for index, item in enumerate(items):
        where = f"{setting}[{index}]"
        if not isinstance(item, dict):
            raise SettingError(where, "must be an object")
        if item.get("kind") == BOT_KIND:
            continue
        unknown = set(item) - ENDPOINT_KEYS
        if unknown:
            raise SettingError(where, f"unknown keys {sorted(unknown)}")
        name = str(item.get("name") or "")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
            raise SettingError(f"{where}.name", "must be a short lower-case identifier")
        kind = item.get("kind", "app")
        if kind not in KINDS:
            raise SettingError(f"{where}.kind", f"must be one of {', '.join((*KINDS, BOT_KIND))}")
        receive_id = item.get("receive_id", corp_id)
        if not isinstance(receive_id, str):
            raise SettingError(f"{where}.receive_id", "must be a string")
        own = str(item.get("handlers") or "")
        secret = str(item.get("secret") or "")
        if kind == "kf":
            handlers: tuple[str, str] = ("", "")
            kf = _kf_modules(raw, own, f"{where}.handlers", forwarding)
            secret = secret or values.text(raw, "WECOM_KF_SECRET") or app_secret
            kf_secret = secret
        else:
            handlers = _handler_modules(raw, own, f"{where}.handlers", forwarding)
            kf = _kf_modules(raw, "", "", forwarding)
            kf_secret = secret or values.text(raw, "WECOM_KF_SECRET")
        result.append(
            EndpointSettings(
                name=name,
                path=values.path(f"{where}.path", item.get("path", f"/{name}")),
                token=values.token(f"{where}.token", str(item.get("token") or "")),
                aes_key=values.aes_key(f"{where}.aes_key", str(item.get("aes_key") or "")),
                receive_id=receive_id,
                kind=kind,
                handlers=handlers[0],
                handlers_setting=handlers[1],
                kf_handlers=kf[0],
                kf_handlers_setting=kf[1],
                agent_id=_agent_id(f"{where}.agent_id", str(item.get("agent_id") or "")),
                secret=secret,
                kf_secret=kf_secret,
            )
        )
    return result
