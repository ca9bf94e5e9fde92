"""WeCom server API: access_token cache, typed errors, one retry loop and the HTTP client.

Modules: ``client`` (:class:`WeComClient`, the calls), ``retry`` (the retry loop and its
"may have reached WeCom" hook), ``exchange`` (one HTTP exchange), ``errors``, ``tokens`` (the
shared access_token), ``masking`` (secrets out of logs).
"""

from app.infra.api.client import DEFAULT_API_BASE, WeComClient
from app.infra.api.errors import (
    TokenUnavailableError,
    WeComAPIError,
    WeComConfigError,
    WeComRefusalError,
    WeComRetryableError,
    WeComTokenError,
    WeComTransportError,
)
from app.infra.api.masking import mask_url
from app.infra.api.retry import MaybeReached, RetryPolicy
from app.infra.api.tokens import TokenProvider, cache_key

__all__ = [
    "DEFAULT_API_BASE",
    "MaybeReached",
    "RetryPolicy",
    "TokenProvider",
    "TokenUnavailableError",
    "WeComAPIError",
    "WeComClient",
    "WeComConfigError",
    "WeComRefusalError",
    "WeComRetryableError",
    "WeComTokenError",
    "WeComTransportError",
    "cache_key",
    "mask_url",
]
