"""Keep the corpsecret and the access_token out of log lines and error messages.

Both travel in query strings, and requests and urllib3 put whole URLs into their messages.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"((?:access_token|corpsecret)=)[^&\s'\"<>)]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """``text`` with the values of access_token and corpsecret replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class MaskSecretsFilter(logging.Filter):
    """Masks access_token/corpsecret in records of a logger we do not own.

    urllib3 logs every request line at DEBUG, query string included; with DEBUG logging on,
    that would print the secret (gettoken) and the token (every call).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_masking(logger_name: str = "urllib3.connectionpool") -> None:
    """Attach :class:`MaskSecretsFilter` to ``logger_name`` once (idempotent)."""
    target = logging.getLogger(logger_name)
    if not any(isinstance(f, MaskSecretsFilter) for f in target.filters):
        target.addFilter(MaskSecretsFilter())
