"""WeCom server API: access_token cache, typed errors and the HTTP client."""

from app.infra.api.client import DEFAULT_API_BASE, RetryPolicy, WeComClient, mask_url
from app.infra.api.errors import (
    TokenUnavailableError,
    WeComAPIError,
    WeComConfigError,
    WeComRefusalError,
    WeComRetryableError,
    WeComTokenError,
    WeComTransportError,
)
from app.infra.api.tokens import TokenProvider, cache_key

__all__ = [
    "DEFAULT_API_BASE",
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
