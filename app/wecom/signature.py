"""The msg_signature: SHA-1 over the sorted Token, timestamp, nonce and ciphertext."""

from __future__ import annotations

import hashlib
import hmac

from .errors import ComputeSignatureError, SignatureError


def compute_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Sign the exact strings received (never re-format the timestamp)."""
    try:
        parts = sorted([token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()
    except (TypeError, UnicodeEncodeError) as exc:
        # A missing query parameter (None) or a lone surrogate: the official code -40003.
        raise ComputeSignatureError(type(exc).__name__) from None


def verify_signature(
    token: str, timestamp: str, nonce: str, encrypted: str, msg_signature: str
) -> None:
    """Raise SignatureError unless msg_signature matches, compared in constant time."""
    expected = compute_signature(token, timestamp, nonce, encrypted)
    if not isinstance(msg_signature, str) or not msg_signature.isascii():
        raise SignatureError()
    if not hmac.compare_digest(expected.encode("ascii"), msg_signature.lower().encode("ascii")):
        raise SignatureError()
