"""Parsing and checking one setting value. Every failure is a :class:`SettingError` naming it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9]+")
_AES_KEY_CHARS = re.compile(r"[A-Za-z0-9+/]")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
AES_KEY_LENGTH = 43
TOKEN_MAX_LENGTH = 32


class SettingError(ValueError):
    """A setting has a bad value; the message names it (and never shows a secret)."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


def text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return "" if value is None else str(value).strip()


def number(raw: Mapping[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    """A whole number (``kind=int``) or seconds (``kind=float``) between ``low`` and ``high``."""
    value = raw.get(name)
    what, unit = ("a whole number", "") if kind is int else ("a number of seconds", " seconds")
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be {what}, got {value!r}") from None
    if not low <= parsed <= high:
        raise SettingError(name, f"must be between {low:g} and {high:g}{unit}, got {parsed:g}")
    return parsed


def url(raw: Mapping[str, Any], name: str) -> str:
    value = text(raw, name)
    if value and not _URL.fullmatch(value):
        # Only the scheme is shown: a URL may carry credentials.
        raise SettingError(name, "must be an http:// or https:// URL")
    return value


def choice(raw: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = text(raw, name).upper()
    if value not in choices:
        raise SettingError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def addresses(setting: str, value: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks, or ``*`` (gunicorn's format)."""
    import ipaddress

    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingError(setting, f"{item!r} is not an IP address or network") from None
    return items


def flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name)
    if isinstance(value, bool):
        return value
    return text(raw, name).lower() in ("1", "true", "yes", "on")


ADMIN_TOKEN_MIN_LENGTH = 16


def admin_token(raw: Mapping[str, Any], name: str) -> str:
    """The operator's token for /metrics and /console: empty (off), or at least 16 printable
    characters without spaces (it is a password and a bearer token)."""
    value = text(raw, name)
    if not value:
        return ""
    if len(value) < ADMIN_TOKEN_MIN_LENGTH:
        raise SettingError(
            name, f"is {len(value)} characters long; use at least {ADMIN_TOKEN_MIN_LENGTH}"
        )
    if not value.isascii() or not value.isprintable() or " " in value:
        raise SettingError(name, "must be printable ASCII without spaces")
    return value


def token(setting: str, value: str) -> str:
    if not value:
        raise SettingError(setting, "is required (the Token from the WeCom admin console)")
    if len(value) > TOKEN_MAX_LENGTH:
        raise SettingError(
            setting, f"is {len(value)} characters long; a Token has at most {TOKEN_MAX_LENGTH}"
        )
    if not _TOKEN_CHARS.fullmatch(value):
        position = next(i for i, c in enumerate(value, 1) if not _TOKEN_CHARS.fullmatch(c))
        raise SettingError(
            setting, f"character {position} is not a letter or digit; a Token has only those"
        )
    return value


def aes_key(setting: str, value: str) -> str:
    """The EncodingAESKey: 43 letters and digits (base64 without its padding)."""
    if not value:
        raise SettingError(setting, "is required (the 43-character EncodingAESKey)")
    if len(value) != AES_KEY_LENGTH:
        raise SettingError(
            setting,
            f"is {len(value)} characters long; an EncodingAESKey has exactly {AES_KEY_LENGTH}",
        )
    for position, character in enumerate(value, 1):
        if not _AES_KEY_CHARS.fullmatch(character):
            raise SettingError(
                setting,
                f"character {position} ({character!r}) is not a letter or digit; "
                "copy the EncodingAESKey again from the admin console",
            )
    from app.wecom.aes import decode_aes_key
    from app.wecom.errors import InvalidAESKeyError

    try:
        decode_aes_key(value)
    except InvalidAESKeyError as exc:
        raise SettingError(setting, exc.detail) from None
    return value


def path(setting: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or " " in value:
        raise SettingError(setting, f"must be a URL path starting with '/', got {value!r}")
    return value.rstrip("/") or "/"


def module_name(setting: str, value: str) -> str:
    """A dotted Python module name (checked for shape only; importing it is the loader's job)."""
    if value and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", value):
        raise SettingError(setting, f"must be a dotted Python module name, got {value!r}")
    return value


def endpoint_items(raw: Mapping[str, Any], setting: str = "WECOM_ENDPOINTS") -> list[Any]:
    """The entries of ``WECOM_ENDPOINTS``: a JSON list (or a list, from a mapping)."""
    source = raw.get(setting) or ""
    if not source:
        return []
    try:
        items = json.loads(source) if isinstance(source, str) else source
    except json.JSONDecodeError as exc:
        raise SettingError(setting, f"is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise SettingError(setting, "must be a JSON list of endpoint objects")
    return items
