"""The outer layer of a callback: the POST body around the ciphertext, and the reply around ours.

Only ``Encrypt`` is signed. ``ToUserName`` and ``AgentID`` are returned for logging and routing
hints, never to be trusted: identity comes from the decrypted plaintext.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import EnvelopeError
from .xmlsafe import cdata, escape_text, parse_xml

# JSON envelope (intelligent bot) key → XML element name. The official JSON samples use the lower
# case spelling, older ones the XML names; both are accepted.
_JSON_KEYS = {
    "encrypt": "Encrypt",
    "Encrypt": "Encrypt",
    "tousername": "ToUserName",
    "ToUserName": "ToUserName",
    "agentid": "AgentID",
    "AgentID": "AgentID",
}


def parse_envelope(body: bytes | str) -> dict[str, str]:
    """Return ``{"Encrypt": ..., "ToUserName": ..., "AgentID": ...}`` from an XML or JSON body.

    ``Encrypt`` must be a non-empty string; the two unsigned fields are ``""`` when absent.
    Everything else wrong (broken XML or JSON, a DTD, a repeated or nested field) raises
    EnvelopeError.
    """
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise EnvelopeError(f"expected the request body, got {type(body).__name__}")
    body = bytes(body)
    if body.lstrip()[:1] == b"{":
        fields = _json_fields(body)
    else:
        fields = parse_xml(body, error=EnvelopeError)
    envelope = {"Encrypt": "", "ToUserName": "", "AgentID": ""}
    for name in envelope:
        value = fields.get(name, "")
        if not isinstance(value, str):
            raise EnvelopeError(f"{name} must be a single text value")
        envelope[name] = value
    if not envelope["Encrypt"]:
        raise EnvelopeError("no Encrypt element")
    return envelope


def _json_fields(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"malformed JSON: {exc}") from None
    except RecursionError:  # the envelope is one flat object; this is an attack on the parser
        raise EnvelopeError("malformed JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise EnvelopeError("the JSON envelope must be an object")
    fields: dict[str, Any] = {}
    for key, name in _JSON_KEYS.items():
        if key not in document:
            continue
        value = document[key]
        if name == "AgentID" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # the official JSON sample sends "agentid": 218
        if name in fields and fields[name] != value:
            raise EnvelopeError(f"conflicting spellings of {name}")
        fields[name] = value
    return fields


def build_reply_envelope(encrypted: str, signature: str, timestamp: str, nonce: str) -> str:
    """The XML body of an encrypted passive reply (protocol reference §3.2)."""
    return (
        "<xml>\n"
        f"<Encrypt>{cdata(encrypted)}</Encrypt>\n"
        f"<MsgSignature>{cdata(signature)}</MsgSignature>\n"
        f"<TimeStamp>{escape_text(timestamp)}</TimeStamp>\n"
        f"<Nonce>{cdata(nonce)}</Nonce>\n"
        "</xml>"
    )


__all__ = ["build_reply_envelope", "parse_envelope"]
