"""Property: any text a member sends comes back exactly through the whole callback path
(sign, encrypt, POST, decrypt, parse, route, render, encrypt, sign, and back)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import create_app
from app.devtools.simulator import Simulator, build_message_xml
from app.wecom import parse_message
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN, client_transport


@pytest.fixture(scope="module")
def simulator():
    app = create_app(BASE_CONFIG)  # the demo bot echoes text
    yield Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))
    app.extensions["wecom"].stop_background()


# What WeCom can send at all: characters XML 1.0 can carry.
XML_CHARS = st.characters(
    exclude_categories=("Cs",),
    exclude_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)] + ["\ufffe", "\uffff"],
)


@settings(max_examples=150, deadline=None)
@given(content=st.text(XML_CHARS, min_size=1, max_size=700))
def test_any_text_is_echoed_exactly(simulator, content):
    fields = simulator.message_fields("text", Content=content)
    received = parse_message(build_message_xml(fields))["Content"]  # what the handler sees
    result = simulator.send_fields(fields)
    assert result.status == 200
    if received == "你好":
        assert result.reply["Content"] == "你好,这是测试机器人"
    elif received:
        assert result.reply["Content"] == received
    else:
        assert result.reply is None  # nothing to echo: an empty answer
