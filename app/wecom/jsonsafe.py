"""JSON parsing that answers a hostile document with a typed error, never a RecursionError.

Python's ``json`` recurses once per nested array or object, so ``[[[[…`` a few thousand deep
raises RecursionError (a 500 in a web server). :func:`loads` measures the nesting first, in a few
linear passes done by the regular-expression engine (strings are removed, then the innermost
bracket pairs are peeled off once per level), and stops at ``max_depth``. It also refuses
``NaN``/``Infinity`` and repeated keys, which WeCom never sends.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import EnvelopeError, WeComError

#: Deepest nesting accepted by default; WeCom's deepest payload (a template_card_event) has 6.
MAX_DEPTH = 16

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")


def nesting_depth(text: str, limit: int) -> int:
    """Depth of the arrays and objects in ``text`` (0 for a scalar), or ``limit + 1`` as soon as
    it is deeper than ``limit``. Raises ValueError when the brackets are unbalanced."""
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    while skeleton:
        if depth == limit:
            return limit + 1
        peeled = _INNERMOST_PAIR.sub("", skeleton)
        if len(peeled) == len(skeleton):
            raise ValueError("unbalanced brackets")
        skeleton = peeled
        depth += 1
    return depth


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key is repeated")
    return document


def loads(
    data: bytes | str,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    error: type[WeComError] = EnvelopeError,
) -> Any:
    """Parse ``data`` (UTF-8 bytes or text) or raise ``error`` saying what is wrong."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        if len(data) > max_bytes:
            raise error(f"JSON larger than {max_bytes} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise error("JSON is not UTF-8") from None
    elif isinstance(data, str):
        text = data
        if len(text) > max_bytes:  # characters ≤ bytes: a cheap first bound
            raise error(f"JSON larger than {max_bytes} bytes")
    else:
        raise error(f"expected JSON text, got {type(data).__name__}")
    try:
        depth = nesting_depth(text, max_depth)
    except ValueError as exc:
        raise error(f"malformed JSON: {exc}") from None
    if depth > max_depth:
        raise error(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # RecursionError: cannot happen after the check
        raise error(f"malformed JSON: {exc}") from None


__all__ = ["MAX_DEPTH", "loads", "nesting_depth"]
