"""The outer layer of a callback: the POST body around the ciphertext, and the reply around ours.

Only ``Encrypt`` is signed. ``ToUserName`` and ``AgentID`` are returned for logging and routing
hints, never to be trusted: identity comes from the decrypted plaintext.

Parse once, cheaply: the XML envelope WeCom sends is always the same few elements, so
:func:`_fast_fields` reads it with one strict pattern instead of a full xmltodict pass. The pattern
accepts only ``<xml>`` holding ``ToUserName``, ``AgentID`` and ``Encrypt`` (each at most once, in
any order, separated by XML white space), each a non-empty run of characters that mean nothing to
XML (letters, digits, ``+/=_.@-``), bare or in one CDATA section. Anything else (a declaration,
a DOCTYPE, an entity or character reference, a comment, an attribute, another element, another
character, a repeated field, trailing bytes) is not "unusual but fine" for the pattern: it falls
back to the hardened parser (:func:`app.wecom.xmlsafe.parse_xml`), which accepts or refuses it as
before. What the pattern accepts, the hardened parser reads the same way (the property tests in
tests/wecom/test_envelope_fast.py check both directions on generated bodies), so the fast path
changes speed, never an answer.
"""

from __future__ import annotations

import re
from typing import Any

from . import jsonsafe
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


# One field: name, then its value bare or in one CDATA section, then the matching end tag. The value
# alphabet has no character XML gives a meaning to (no <, >, &, ], quotes, white space), so a
# match is linear in the body and cannot be anything but plain text.
_FAST_VALUE = rb"[A-Za-z0-9+/=_.@-]+"
_FAST_FIELD = re.compile(
    rb"[ \t\r\n]*<(ToUserName|AgentID|Encrypt)>"
    rb"(?:<!\[CDATA\[(" + _FAST_VALUE + rb")\]\]>|(" + _FAST_VALUE + rb"))</\1>"
)
_FAST_END = re.compile(rb"[ \t\r\n]*</xml>[ \t\r\n]*\Z")


def _fast_fields(body: bytes) -> dict[str, str] | None:
    """The envelope's fields when ``body`` has the usual strict shape; None for anything else."""
    if not body.startswith(b"<xml>"):
        return None
    fields: dict[str, str] = {}
    position = 5
    while True:
        match = _FAST_FIELD.match(body, position)
        if match is None:
            break
        name = match.group(1).decode("ascii")
        if name in fields:
            return None  # repeated: the hardened parser says why it is refused
        fields[name] = (match.group(2) or match.group(3)).decode("ascii")
        position = match.end()
    if _FAST_END.match(body, position) is None:
        return None
    return fields


def _safe_fields(body: bytes) -> dict[str, Any]:
    """The fields of any body, through the hardened XML parser or the bounded JSON reader."""
    if body.lstrip()[:1] == b"{":
        return _json_fields(body)
    return parse_xml(body, error=EnvelopeError)


def parse_envelope(body: bytes | str) -> dict[str, str]:
    """Return ``{"Encrypt": ..., "ToUserName": ..., "AgentID": ...}`` from an XML or JSON body.

    ``Encrypt`` must be a non-empty string; the two unsigned fields are ``""`` when absent.
    Everything else wrong (broken XML or JSON, a DTD, a repeated or nested field) raises
    EnvelopeError.
    """
    body = _body_bytes(body)
    fields = _fast_fields(body)
    return _envelope(_safe_fields(body) if fields is None else fields)


def _body_bytes(body: bytes | str) -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise EnvelopeError(f"expected the request body, got {type(body).__name__}")
    return bytes(body)


def _envelope(fields: dict[str, Any]) -> dict[str, str]:
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
    # Not json.loads: a deeply nested body would raise RecursionError (a 500).
    document = jsonsafe.loads(body, max_bytes=len(body), max_depth=2, error=EnvelopeError)
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
