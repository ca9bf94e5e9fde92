"""The envelope's fast path agrees with the hardened parser on every body, usual or hostile.

``parse_envelope`` reads the usual envelope with one strict pattern (``_fast_fields``) and hands
everything else to the hardened XML parser. These properties hold for generated bodies:

* whatever ``parse_envelope`` answers (fields, or the error class and its message) is exactly what
  the hardened parser alone answers;
* when the pattern accepts a body, the hardened parser reads the same fields from it;
* the envelopes WeCom sends (any order, XML white space, CDATA or not) do take the fast path, so
  the first property is not passing only because everything falls back.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wecom import envelope
from app.wecom.envelope import parse_envelope
from app.wecom.errors import EnvelopeError, WeComError

FAST_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.@-"
FIELDS = ("ToUserName", "AgentID", "Encrypt")


def reference(body: bytes) -> Any:
    """The answer of the hardened parser alone (no fast path), as a comparable value."""
    try:
        return ("ok", envelope._envelope(envelope._safe_fields(body)))
    except WeComError as exc:
        return ("refused", type(exc), str(exc))


def answer(body: bytes) -> Any:
    try:
        return ("ok", parse_envelope(body))
    except WeComError as exc:
        return ("refused", type(exc), str(exc))


usual_values = st.text(FAST_ALPHABET, min_size=1, max_size=60)
xml_space = st.text(" \t\r\n", max_size=3)


@st.composite
def usual_envelopes(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """What WeCom sends: the three fields (Encrypt always), any order, white space, CDATA or not."""
    names = draw(st.permutations(FIELDS))
    names = [n for n in names if n == "Encrypt" or draw(st.booleans())]
    fields = {name: draw(usual_values) for name in names}
    parts = ["<xml>"]
    for name in names:
        value = fields[name]
        text = f"<![CDATA[{value}]]>" if draw(st.booleans()) else value
        parts.append(f"{draw(xml_space)}<{name}>{text}</{name}>")
    parts.append(f"{draw(xml_space)}</xml>{draw(xml_space)}")
    return "".join(parts).encode(), fields


# Pieces of bodies that are unusual or hostile: each alone or combined must be answered the same.
SPECIAL_VALUES = ("a b", " x", "x\n", "&amp;", "&#65;", "&e;", "]]>", "<x/>", "<![CDATA[a]]>")
odd_values = st.one_of(
    usual_values,
    st.just(""),
    st.text(max_size=12),  # anything: <, &, ]]>, CJK, controls, surrogate-free Unicode
    st.sampled_from([*SPECIAL_VALUES, "中文", "a\x00"]),
)
names = st.sampled_from([*FIELDS, "encrypt", "Other", "Encrypt a='1'", "Encrypt/"])
separators = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\x0b", "x", "<!-- c -->", "<?pi?>"])
prologs = st.sampled_from(
    [
        "",
        "<?xml version='1.0' encoding='utf-8'?>",
        "\ufeff",
        " ",
        '<!DOCTYPE xml [<!ENTITY e "boom">]>',
        '<!DOCTYPE xml SYSTEM "file:///etc/passwd">',
    ]
)
roots = st.sampled_from(["xml", "XML", "root", "xml a='1'"])
trailers = st.sampled_from(["", "\n", " \r\n", "junk", "<x/>", "<xml></xml>", "\x00"])


@st.composite
def odd_envelopes(draw: st.DrawFn) -> bytes:
    root = draw(roots)
    parts = [draw(prologs), f"<{root}>"]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(names)
        value = draw(odd_values)
        text = f"<![CDATA[{value}]]>" if draw(st.booleans()) else value
        parts.append(f"{draw(separators)}<{name}>{text}</{name.split()[0].rstrip('/')}>")
    parts.append(f"{draw(separators)}</{root.split()[0]}>{draw(trailers)}")
    return "".join(parts).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(usual_envelopes())
def test_usual_envelopes_take_the_fast_path_and_agree(case: tuple[bytes, dict[str, str]]) -> None:
    body, fields = case
    assert envelope._fast_fields(body) == fields
    assert envelope._safe_fields(body) == fields
    assert answer(body) == reference(body)


@settings(max_examples=600, deadline=None)
@given(odd_envelopes())
def test_any_body_is_answered_as_the_hardened_parser_answers(body: bytes) -> None:
    fast = envelope._fast_fields(body)
    if fast is not None:
        assert envelope._safe_fields(body) == fast
    assert answer(body) == reference(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_are_answered_as_the_hardened_parser_answers(body: bytes) -> None:
    assert answer(b"<xml>" + body) == reference(b"<xml>" + body)
    assert answer(body) == reference(body)


HOSTILE = [
    # A DTD with entities (a billion-laughs seed), an external entity, a parameter entity.
    b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    b'<xml><!DOCTYPE x [<!ENTITY e "v">]><Encrypt>abc</Encrypt></xml>',
    b"<xml><Encrypt>abc&e;</Encrypt></xml>",
    # Nesting far past the depth limit, inside and around a usual field.
    b"<xml>" + b"<a>" * 50 + b"</a>" * 50 + b"<Encrypt>abc</Encrypt></xml>",
    b"<xml><Encrypt>" + b"<a>" * 50 + b"x" + b"</a>" * 50 + b"</Encrypt></xml>",
    # Repeated, nested, unclosed, trailing.
    b"<xml><Encrypt>abc</Encrypt><Encrypt>abc</Encrypt></xml>",
    b"<xml><Encrypt><Encrypt>abc</Encrypt></Encrypt></xml>",
    b"<xml><Encrypt>abc</Encrypt>",
    b"<xml><Encrypt>abc</Encrypt></xml><xml><Encrypt>def</Encrypt></xml>",
    b"<xml>" + b"<Encrypt>" * 5000,
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_fall_back_and_are_refused_as_before(body: bytes) -> None:
    assert envelope._fast_fields(body) is None
    refused = reference(body)
    assert refused[0] == "refused" and refused[1] is EnvelopeError
    assert answer(body) == refused


def test_a_large_usual_body_takes_the_fast_path() -> None:
    value = "A" * 1_000_000
    body = f"<xml><Encrypt><![CDATA[{value}]]></Encrypt></xml>".encode()
    assert envelope._fast_fields(body) == {"Encrypt": value}
    assert answer(body) == reference(body)
