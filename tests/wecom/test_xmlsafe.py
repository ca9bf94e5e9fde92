"""Hardened XML parsing and CDATA writing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.wecom.errors import EnvelopeError, MessageError
from app.wecom.xmlsafe import cdata, escape_text, parse_xml, strip_invalid_xml_chars

ANY_TEXT = st.text(st.characters(exclude_categories=()))  # surrogates and controls included


def test_children_of_the_root_as_strings() -> None:
    xml = "<xml><A>1</A><B><![CDATA[two]]></B><C><D>3</D></C></xml>"
    assert parse_xml(xml) == {"A": "1", "B": "two", "C": {"D": "3"}}


def test_whitespace_in_values_is_kept_and_indentation_dropped() -> None:
    xml = "<xml>\n  <A>  padded \n</A>\n  <B><![CDATA[ cdata ]]></B>\n</xml>"
    assert parse_xml(xml) == {"A": "  padded \n", "B": " cdata "}


def test_empty_elements_are_empty_strings() -> None:
    assert parse_xml("<xml><A/><B></B><C><![CDATA[]]></C></xml>") == {"A": "", "B": "", "C": ""}
    assert parse_xml("<xml/>") == {}
    assert parse_xml("<xml>  \n </xml>") == {}


def test_repeated_elements_become_lists() -> None:
    assert parse_xml("<xml><A>1</A><A>2</A></xml>") == {"A": ["1", "2"]}


def test_force_list_sees_the_ancestors() -> None:
    calls = []

    def force(ancestors: tuple[str, ...], name: str) -> bool:
        calls.append((ancestors, name))
        return name == "B"

    assert parse_xml("<r><A><B>1</B></A></r>", force_list=force) == {"A": {"B": ["1"]}}
    assert (("r", "A"), "B") in calls
    assert (("r",), "A") in calls


def test_escaped_and_cdata_forms_read_the_same() -> None:
    assert parse_xml("<x><v>a &lt;b&gt; &amp; &#x4E2D;&#13;</v></x>") == {"v": "a <b> & 中\r"}
    assert parse_xml("<x><v><![CDATA[a <b> & 中]]></v></x>") == {"v": "a <b> & 中"}


def test_attributes_comments_and_processing_instructions_are_ignored() -> None:
    xml = '<?xml version="1.0" encoding="UTF-8"?><x a="1"><!-- c --><?pi x?><v b="2">t</v></x>'
    assert parse_xml(xml) == {"v": "t"}


def test_any_root_name_and_bytes_input() -> None:
    assert parse_xml("<message><v>中</v></message>".encode()) == {"v": "中"}


def test_declared_encoding_cannot_override_utf8() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><x><v>中</v></x>'.encode()
    assert parse_xml(data) == {"v": "中"}


# --- rejected input -----------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><lolz><v>&lol9;</v></lolz>"
)
QUADRATIC_BLOWUP = f'<!DOCTYPE x [<!ENTITY big "{"A" * 200_000}">]><x><v>{"&big;" * 5_000}</v></x>'
EXTERNAL_ENTITY = '<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]><x><v>&ext;</v></x>'
EXTERNAL_DTD = '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><x><v>1</v></x>'
PARAMETER_ENTITY = (
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><x><v>1</v></x>'
)


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        QUADRATIC_BLOWUP,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        PARAMETER_ENTITY,
        "<!DOCTYPE x><x><v>1</v></x>",
    ],
    ids=["billion-laughs", "quadratic", "ext-entity", "ext-dtd", "param-entity", "doctype"],
)
def test_any_doctype_is_rejected_quickly(xml: str) -> None:
    """Refused at the DOCTYPE declaration itself, before any entity is defined, so nothing can
    be expanded: a parser that expanded the billion laughs would not finish this test."""
    with pytest.raises(MessageError, match="DOCTYPE"):
        parse_xml(xml)


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "   ",
        "not xml",
        "<xml>",
        "<xml><A></xml>",
        "<xml><A>1</B></xml>",
        "<xml></xml><xml></xml>",
        '<?xml version="1.0"?>',
        "<!-- only a comment -->",
        "<x><v>&undefined;</v></x>",
        "<x><v>\x01</v></x>",
        "<x><v>\ufffe</v></x>",
    ],
)
def test_broken_or_rootless_xml(xml: str) -> None:
    with pytest.raises(MessageError) as info:
        parse_xml(xml)
    assert info.value.code == -40002


def test_invalid_utf8_bytes() -> None:
    with pytest.raises(MessageError):
        parse_xml(b"<x><v>\xff\xfe</v></x>")


@pytest.mark.parametrize("data", ["<x><v>\ud800</v></x>", 42, None])
def test_unencodable_or_wrong_type(data: object) -> None:
    with pytest.raises(MessageError):
        parse_xml(data)  # type: ignore[arg-type]


def test_root_with_only_text() -> None:
    with pytest.raises(MessageError, match="no child"):
        parse_xml("<xml>hello</xml>")


def test_mixed_content() -> None:
    with pytest.raises(MessageError, match="mixed"):
        parse_xml("<xml><A>1</A>stray text<B>2</B></xml>")


def _nested(depth: int) -> str:
    return "<e>" * depth + "x" + "</e>" * depth


def test_depth_limit() -> None:
    assert parse_xml(_nested(20))  # the root counts as depth 1
    with pytest.raises(MessageError, match="deeper than 20"):
        parse_xml(_nested(21))
    with pytest.raises(MessageError, match="deeper than 3"):
        parse_xml(_nested(4), max_depth=3)


def test_very_deep_document_is_rejected_quickly() -> None:
    """Refused at the first element past the limit: the error names the limit, not the depth
    of the whole document."""
    with pytest.raises(MessageError, match="deeper than 20"):
        parse_xml(_nested(100_000))


def test_depth_counts_nesting_not_elements() -> None:
    wide = "<x>" + "<a><b>1</b></a>" * 1000 + "</x>"
    assert len(parse_xml(wide, max_depth=3)["a"]) == 1000


def test_error_class_is_chosen_by_the_caller() -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_xml("<xml>", error=EnvelopeError)
    assert info.value.code == -40002
    with pytest.raises(EnvelopeError, match="DOCTYPE"):
        parse_xml(EXTERNAL_ENTITY, error=EnvelopeError)


# --- writing ----------------------------------------------------------------------------


def _round_trip(text: str) -> str:
    return parse_xml(f"<x><v>{cdata(text)}</v></x>")["v"]


@pytest.mark.parametrize(
    "text",
    ["", "plain", "]]>", "]]]]>>", "a]]>b]]>c", "<tag attr='x'>&amp;</tag>", "\r\n", "x\ry", "😀"],
)
def test_cdata_survives_hostile_text(text: str) -> None:
    assert _round_trip(text) == text


def test_cdata_splits_the_terminator() -> None:
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


def test_cdata_strips_what_xml_cannot_carry() -> None:
    assert _round_trip("a\x00b\x08c\x0bd\x1fe\ud800f\udfff\ufffe\uffffg") == "abcdefg"


def test_strip_keeps_tab_newline_cr_and_astral_characters() -> None:
    text = "\t\n\r 中 😀 \U0010ffff \ue000"
    assert strip_invalid_xml_chars(text) == text


@given(ANY_TEXT)
def test_cdata_round_trips_any_text(text: str) -> None:
    assert _round_trip(text) == strip_invalid_xml_chars(text)


@given(ANY_TEXT)
def test_escape_text_round_trips_any_text(text: str) -> None:
    assert parse_xml(f"<x><v>{escape_text(text)}</v></x>")["v"] == strip_invalid_xml_chars(text)
