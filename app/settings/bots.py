"""Settings of the intelligent bot endpoints and of the LLM backend, as frozen dataclasses.

Part of :class:`app.settings.Settings` (its ``bots`` field), read from the same raw mapping; a bad
value raises :class:`~app.settings.SettingError` naming the setting. Secrets
(Token, EncodingAESKey, API key) are left out of every repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.settings import values
from app.settings.values import SettingError

#: The bot demo, used when a bot names no handler module.
BOT_DEMO_HANDLERS = "app.handlers.bot_demo"
#: Name of the bot configured by WECOM_BOT_TOKEN / WECOM_BOT_AES_KEY.
SINGLE_BOT = "bot"

_ENDPOINT_KEYS = {"name", "path", "token", "aes_key", "kind", "handlers", "welcome", "receive_id"}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
_HISTORY_RANGE = (0, 100)
_TIMEOUT_RANGE = (1.0, 3600.0)
#: WeCom stops refreshing 6 minutes after the user's message; close a little before.
_WINDOW_RANGE = (1.0, 360.0)


@dataclass(frozen=True)
class BotEndpointSettings:
    """One bot's callback URL and keys (the receiveid is always ``""``)."""

    name: str
    path: str
    token: str = field(repr=False)
    aes_key: str = field(repr=False)
    handlers: str = ""  # empty: the demo, or the LLM when WECOM_LLM_BASE_URL is set
    welcome: str = ""


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat completions API; off when ``base_url`` is empty."""

    base_url: str = ""
    api_key: str = field(default="", repr=False)
    model: str = ""
    system_prompt: str = ""
    history: int = 10  # past turns (question + answer) kept per conversation
    timeout: float = 120.0  # seconds for one whole answer

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


@dataclass(frozen=True)
class BotSettings:
    bots: tuple[BotEndpointSettings, ...] = ()
    llm: LlmSettings = LlmSettings()
    fallback: str = "响应错误"  # WECOM_FORWARD_FALLBACK: the answer when the model fails
    stream_window: float = 330.0  # seconds after the message before an open stream is closed


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    return "" if value is None else str(value)


def llm_settings(config: Mapping[str, Any]) -> LlmSettings:
    base_url = _text(config, "WECOM_LLM_BASE_URL").strip().rstrip("/")
    if base_url and not _URL.fullmatch(base_url):
        raise SettingError(
            "WECOM_LLM_BASE_URL", f"must be an http:// or https:// URL, got {base_url!r}"
        )
    api_key = _text(config, "WECOM_LLM_API_KEY")
    if api_key and not re.fullmatch(r"[\x21-\x7e]+", api_key):
        # Never echo the key: it goes into an HTTP header, so it must be visible ASCII.
        raise SettingError("WECOM_LLM_API_KEY", "must be printable ASCII without spaces")
    model = _text(config, "WECOM_LLM_MODEL").strip()
    if base_url and not model:
        raise SettingError("WECOM_LLM_MODEL", "is required when WECOM_LLM_BASE_URL is set")
    return LlmSettings(
        base_url=base_url,
        api_key=api_key,
        model=model,
        system_prompt=_text(config, "WECOM_LLM_SYSTEM_PROMPT"),
        history=values.number(config, "WECOM_LLM_HISTORY", int, *_HISTORY_RANGE),
        timeout=values.number(config, "WECOM_LLM_TIMEOUT", float, *_TIMEOUT_RANGE),
    )


def _single_bot(config: Mapping[str, Any]) -> list[BotEndpointSettings]:
    token, aes_key = _text(config, "WECOM_BOT_TOKEN"), _text(config, "WECOM_BOT_AES_KEY")
    if not (token or aes_key):
        return []
    values.token("WECOM_BOT_TOKEN", token)
    values.aes_key("WECOM_BOT_AES_KEY", aes_key)
    return [
        BotEndpointSettings(
            name=SINGLE_BOT,
            path=values.path("WECOM_BOT_PATH", _text(config, "WECOM_BOT_PATH") or "/bot"),
            token=token,
            aes_key=aes_key,
            handlers=_text(config, "WECOM_BOT_HANDLERS").strip(),
            welcome=_text(config, "WECOM_BOT_WELCOME"),
        )
    ]


def _listed_bots(config: Mapping[str, Any]) -> list[BotEndpointSettings]:
    """The ``"kind": "aibot"`` entries of WECOM_ENDPOINTS (the others are app.settings')."""
    setting = "WECOM_ENDPOINTS"
    bots = []
    for index, item in enumerate(values.endpoint_items(config, setting)):
        if not isinstance(item, dict) or item.get("kind") != "aibot":
            continue
        where = f"{setting}[{index}]"
        unknown = set(item) - _ENDPOINT_KEYS
        if unknown:
            raise SettingError(where, f"unknown keys {sorted(unknown)} for an aibot endpoint")
        name = str(item.get("name") or "")
        if not _NAME.fullmatch(name):
            raise SettingError(f"{where}.name", "must be a short lower-case identifier")
        if item.get("receive_id") not in (None, ""):
            raise SettingError(
                f"{where}.receive_id", "must be empty: the intelligent bot's receiveid is ''"
            )
        values.token(f"{where}.token", str(item.get("token") or ""))
        values.aes_key(f"{where}.aes_key", str(item.get("aes_key") or ""))
        bots.append(
            BotEndpointSettings(
                name=name,
                path=values.path(f"{where}.path", item.get("path", f"/{name}")),
                token=item["token"],
                aes_key=item["aes_key"],
                handlers=str(item.get("handlers") or ""),
                welcome=str(item.get("welcome") or ""),
            )
        )
    return bots


def bot_settings(config: Mapping[str, Any], taken: Mapping[str, str] | None = None) -> BotSettings:
    """Every bot endpoint and the LLM settings. ``taken`` maps the paths of the XML endpoints to
    their names: a bot may share neither."""
    bots = _single_bot(config) + _listed_bots(config)
    paths = dict(taken or {})
    names = set(paths.values())
    for bot in bots:
        if bot.name in names:
            raise SettingError("WECOM_ENDPOINTS", f"endpoint name {bot.name!r} is used twice")
        if bot.path in paths:
            raise SettingError(
                "WECOM_ENDPOINTS" if bot.name != SINGLE_BOT else "WECOM_BOT_PATH",
                f"endpoints {paths[bot.path]!r} and {bot.name!r} share path {bot.path}",
            )
        names.add(bot.name)
        paths[bot.path] = bot.name
    return BotSettings(
        bots=tuple(bots),
        llm=llm_settings(config),
        fallback=_text(config, "WECOM_FORWARD_FALLBACK") or "响应错误",
        stream_window=values.number(config, "WECOM_BOT_STREAM_WINDOW", float, *_WINDOW_RANGE),
    )


__all__ = [
    "BOT_DEMO_HANDLERS",
    "SINGLE_BOT",
    "BotEndpointSettings",
    "BotSettings",
    "LlmSettings",
    "bot_settings",
    "llm_settings",
]
