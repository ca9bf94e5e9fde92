"""The POST envelope (XML and the bot's JSON) and the encrypted reply envelope."""

from __future__ import annotations

import json

import pytest

from app.wecom.envelope import build_reply_envelope, parse_envelope
from app.wecom.errors import EnvelopeError
from app.wecom.xmlsafe import parse_xml

from .samples import OFFICIAL_DOC_POST, OFFICIAL_SAMPLE_POST

ENC = OFFICIAL_DOC_POST.encrypted


def test_official_bodies() -> None:
    assert parse_envelope(OFFICIAL_DOC_POST.body) == {
        "Encrypt": ENC,
        "ToUserName": "wx5823bf96d3bd56c7",
        "AgentID": "218",
    }
    assert parse_envelope(OFFICIAL_SAMPLE_POST.body) == {
        "Encrypt": OFFICIAL_SAMPLE_POST.encrypted,
        "ToUserName": "ww1436e0e65a779aee",
        "AgentID": "1000002",
    }


def test_unsigned_fields_may_be_absent_and_order_varies() -> None:
    assert parse_envelope(f"<xml><Encrypt>{ENC}</Encrypt></xml>".encode()) == {
        "Encrypt": ENC,
        "ToUserName": "",
        "AgentID": "",
    }
    body = (
        f"<xml><AgentID></AgentID><Encrypt><![CDATA[{ENC}]]></Encrypt>"
        "<ToUserName>c</ToUserName></xml>"
    )
    assert parse_envelope(body.encode()) == {"Encrypt": ENC, "ToUserName": "c", "AgentID": ""}


def test_str_body_is_accepted() -> None:
    assert parse_envelope(OFFICIAL_DOC_POST.body.decode())["Encrypt"] == ENC


@pytest.mark.parametrize(
    "document",
    [
        {"encrypt": ENC},
        {"Encrypt": ENC},
        {"encrypt": ENC, "Encrypt": ENC},
        {"tousername": "wx5823bf96d3bd56c7", "encrypt": ENC, "agentid": 218},
        {"ToUserName": "wx5823bf96d3bd56c7", "Encrypt": ENC, "AgentID": "218"},
    ],
)
def test_json_envelopes(document: dict[str, object]) -> None:
    envelope = parse_envelope(b"  \n" + json.dumps(document).encode())
    assert envelope["Encrypt"] == ENC
    assert envelope["ToUserName"] in ("", "wx5823bf96d3bd56c7")
    assert envelope["AgentID"] in ("", "218")
    assert set(envelope) == {"Encrypt", "ToUserName", "AgentID"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<xml></xml>",
        b"<xml><ToUserName>c</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
        b"<xml><Encrypt><Inner>a</Inner></Encrypt></xml>",
        b"<xml><Encrypt>a</Encrypt><AgentID><x/></AgentID></xml>",
        b"<xml><Encrypt>a</Encrypt>",
        b"Encrypt=abc",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
        b"<xml><Encrypt>\xff</Encrypt></xml>",
        b"{",
        b"{}",
        b'{"encrypt": null}',
        b'{"encrypt": 12}',
        b'{"encrypt": ""}',
        b'{"encrypt": "a", "Encrypt": "b"}',
        b'{"encrypt": "a", "agentid": true}',
        b'{"encrypt": "\xff"}',
        b"[1]",
    ],
)
def test_bad_envelopes(body: bytes) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(body)
    assert (info.value.code, info.value.http_status) == (-40002, 400)


def test_json_array_is_not_mistaken_for_xml() -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(b'{"encrypt": ["a"]}')


def test_wrong_body_type() -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(None)  # type: ignore[arg-type]


def test_reply_envelope_layout() -> None:
    assert build_reply_envelope("ENC==", "ab12", "1718000200", "555666777") == (
        "<xml>\n"
        "<Encrypt><![CDATA[ENC==]]></Encrypt>\n"
        "<MsgSignature><![CDATA[ab12]]></MsgSignature>\n"
        "<TimeStamp>1718000200</TimeStamp>\n"
        "<Nonce><![CDATA[555666777]]></Nonce>\n"
        "</xml>"
    )


def test_reply_envelope_survives_odd_values() -> None:
    xml = build_reply_envelope(ENC, "sig", "1<2&3", "n]]>once")
    assert parse_xml(xml) == {
        "Encrypt": ENC,
        "MsgSignature": "sig",
        "TimeStamp": "1<2&3",
        "Nonce": "n]]>once",
    }
    assert parse_envelope(xml.encode())["Encrypt"] == ENC
