"""The msg_signature: SHA-1 over the sorted Token, timestamp, nonce and ciphertext."""

from __future__ import annotations

import hashlib
import hmac

from .errors import SignatureError


def compute_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Sign the exact strings received (never re-format the timestamp)."""
    parts = sorted([token, timestamp, nonce, encrypted])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def verify_signature(
    token: str, timestamp: str, nonce: str, encrypted: str, msg_signature: str
) -> None:
    """Raise SignatureError unless msg_signature matches, compared in constant time."""
    expected = compute_signature(token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected.encode("ascii"), msg_signature.lower().encode("utf-8")):
        raise SignatureError()
