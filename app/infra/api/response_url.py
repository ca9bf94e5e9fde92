"""Active replies of the intelligent bot: one POST to the ``response_url`` of a callback.

The URL is valid for an hour and may be used once (doc 101138), so a POST is never retried: a
second try could deliver the answer twice or waste the only use. WeCom's own URLs
(``https://qyapi.weixin.qq.com/cgi-bin/…``) are sent to ``api_base`` instead (WECOM_API_BASE),
so tests and the fake WeCom API see them; any other http(s) URL is used as it is.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

log = logging.getLogger(__name__)

OFFICIAL_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"


class ResponseUrlError(Exception):
    """The active reply was not accepted (or may not have been)."""


class ResponseUrlClient:
    def __init__(self, api_base: str = OFFICIAL_BASE, timeout: float = 10.0) -> None:
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.timeout = timeout

    def resolve(self, url: str) -> str:
        if url.startswith(OFFICIAL_BASE):
            return self.api_base + url[len(OFFICIAL_BASE) :]
        if url.startswith(("http://", "https://")):
            return url
        raise ResponseUrlError("response_url is not an http(s) URL")

    def post(self, url: str, body: dict[str, Any]) -> None:
        """Send one active reply; raise ResponseUrlError unless WeCom answered errcode 0."""
        target = self.resolve(url)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            response = requests.post(
                target,
                data=data,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=(3.05, self.timeout),
            )
        except requests.RequestException as exc:
            raise ResponseUrlError(f"response_url POST failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ResponseUrlError(f"response_url answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise ResponseUrlError("response_url answered something that is not JSON") from None
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
        if errcode != 0:
            errmsg = str(answer.get("errmsg", ""))[:200] if isinstance(answer, dict) else ""
            raise ResponseUrlError(f"response_url answered errcode {errcode} {errmsg}".rstrip())


__all__ = ["OFFICIAL_BASE", "ResponseUrlClient", "ResponseUrlError"]
