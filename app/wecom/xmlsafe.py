"""Hardened XML in and out.

Reading goes through xmltodict, but with an expat stand-in that refuses any DOCTYPE (so no DTD,
no internal or external entities, no XML bombs) and any nesting deeper than ``max_depth``.
Writing puts text in CDATA sections that survive any input: ``]]>`` is split, ``\\r`` travels as a
character reference (parsers turn a raw CR into LF even inside CDATA), and characters XML 1.0
cannot carry are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

import xmltodict

from .errors import MessageError, WeComError

#: ``force_list(ancestors, name)``: is element ``name`` under ``ancestors`` (root first) a list?
ForceList = Callable[[tuple[str, ...], str], bool]

# Characters outside the XML 1.0 ``Char`` production; lone surrogates cannot even be encoded.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Rejected(Exception):
    """Raised from inside expat callbacks; becomes the caller's error class."""


def _refuse(what: str) -> Callable[..., Any]:
    def handler(*_args: Any) -> Any:
        raise _Rejected(f"{what} is not allowed")

    return handler


_REFUSE_DOCTYPE = _refuse("a DOCTYPE declaration")
_REFUSE_ENTITY = _refuse("an entity declaration")
_REFUSE_NOTATION = _refuse("a notation declaration")
_REFUSE_EXTERNAL = _refuse("an external entity")


class _DepthLimitedParser:
    """Wraps an expat parser so the element handlers xmltodict installs also count depth."""

    def __init__(self, parser: Any, max_depth: int) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_max_depth", max_depth)
        object.__setattr__(self, "_depth", 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "StartElementHandler":
            value = self._counting_start(value)
        elif name == "EndElementHandler":
            value = self._counting_end(value)
        setattr(self._parser, name, value)

    def _counting_start(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def start(name: str, attrs: Any) -> None:
            depth = self._depth + 1
            if depth > self._max_depth:
                raise _Rejected(f"elements nested deeper than {self._max_depth}")
            object.__setattr__(self, "_depth", depth)
            handler(name, attrs)

        return start

    def _counting_end(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def end(name: str) -> None:
            object.__setattr__(self, "_depth", self._depth - 1)
            handler(name)

        return end


class _HardenedExpat:
    """Stands in for the ``expat`` module passed to ``xmltodict.parse(expat=...)``."""

    def __init__(self, max_depth: int, count_depth: bool = True) -> None:
        self.max_depth = max_depth
        self.count_depth = count_depth

    def ParserCreate(  # the name xmltodict calls
        self, encoding: str | None = None, namespace_separator: str | None = None
    ) -> Any:
        parser = expat.ParserCreate(encoding, namespace_separator)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = _REFUSE_DOCTYPE
        parser.EntityDeclHandler = _REFUSE_ENTITY
        parser.UnparsedEntityDeclHandler = _REFUSE_ENTITY
        parser.NotationDeclHandler = _REFUSE_NOTATION
        parser.ExternalEntityRefHandler = _REFUSE_EXTERNAL
        if not self.count_depth:
            return parser
        return _DepthLimitedParser(parser, self.max_depth)


def _start_tags_at_most(raw: bytes, limit: int) -> bool:
    """True when ``raw`` cannot hold more than ``limit`` start tags, so no element can be nested
    deeper than that: every start tag begins with ``<`` not followed by ``/``, ``!`` or ``?``.
    Three byte counts cost far less than counting depth in a Python callback per element, which
    a typical message (a dozen elements) never needs."""
    tags = raw.count(b"<") - raw.count(b"</") - raw.count(b"<!") - raw.count(b"<?")
    return tags <= limit


def _postprocess(error: type[WeComError]) -> Callable[[Any, str, Any], tuple[str, Any] | None]:
    def postprocessor(_path: Any, key: str, value: Any) -> tuple[str, Any] | None:
        if key == "#text":  # character data next to child elements
            if value.strip():
                raise error("text mixed with child elements")
            return None  # indentation between elements
        return key, "" if value is None else value

    return postprocessor


def parse_xml(
    data: str | bytes,
    *,
    max_depth: int = 20,
    force_list: ForceList | None = None,
    list_names: frozenset[str] | None = None,
    error: type[WeComError] = MessageError,
) -> dict[str, Any]:
    """Return the root element's children as a dict (the root's own name is dropped).

    Leaves are strings, exactly as written (whitespace kept, empty elements give ``""``);
    repeated elements give lists; attributes, comments and processing instructions are
    ignored. Anything unsafe or malformed raises ``error`` (MessageError unless told otherwise,
    e.g. EnvelopeError for the outer POST body). Input bytes must be UTF-8.

    ``list_names``, when given, holds every element name ``force_list`` can say yes to: it is
    asked about those only (building the ancestors of every element costs more than the parse).
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise error("text is not encodable as UTF-8") from None
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise error(f"expected XML text, got {type(data).__name__}")

    xmltodict_force_list = None
    if force_list is not None:

        def xmltodict_force_list(path: list[tuple[str, Any]], key: str, _value: Any) -> bool:
            if list_names is not None and key not in list_names:
                return False
            return force_list(tuple(name for name, _attrs in path), key)

    try:
        document = xmltodict.parse(
            raw,
            encoding="utf-8",
            expat=_HardenedExpat(max_depth, not _start_tags_at_most(raw, max_depth)),
            disable_entities=True,
            xml_attribs=False,
            strip_whitespace=False,
            postprocessor=_postprocess(error),
            force_list=xmltodict_force_list,
        )
    except _Rejected as exc:
        raise error(str(exc)) from None
    except (expat.ExpatError, ValueError) as exc:  # ValueError: xmltodict's entity guard
        raise error(f"malformed XML: {exc}") from None

    if not isinstance(document, dict) or len(document) != 1:
        raise error("no root element")
    (root,) = document.values()
    if isinstance(root, str) and not root.strip():
        return {}  # <xml/>, or a root holding only indentation
    if not isinstance(root, dict):
        raise error("the root element has text but no child elements")
    return root


def strip_invalid_xml_chars(text: str) -> str:
    """Drop what XML 1.0 cannot carry: C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/F."""
    return _INVALID_XML_CHARS.sub("", text)


def cdata(text: str) -> str:
    """Wrap text in CDATA so that any parser reads back ``strip_invalid_xml_chars(text)``."""
    body = strip_invalid_xml_chars(text).replace("]]>", "]]]]><![CDATA[>")
    body = body.replace("\r", "]]>&#13;<![CDATA[")
    return f"<![CDATA[{body}]]>"


def escape_text(text: str) -> str:
    """Escape text for use outside CDATA (numbers such as CreateTime and TimeStamp)."""
    cleaned = strip_invalid_xml_chars(text)
    return (
        cleaned.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


__all__ = ["ForceList", "cdata", "escape_text", "parse_xml", "strip_invalid_xml_chars"]
