"""Every bot message type and event parses into WeCom's own field names; broken ones are 4xx."""

from __future__ import annotations

import json

import pytest

from app.wecom.aibot import (
    BotMessageError,
    callback_kind,
    conversation_id,
    event_details,
    event_type,
    parse_bot_message,
    sender_id,
    text_of,
)
from app.wecom.errors import EnvelopeError
from app.wecom.jsonsafe import loads, nesting_depth

BASE = {
    "msgid": "CAIQ16HMjQYY",
    "aibotid": "AIBOTID",
    "chattype": "single",
    "from": {"userid": "zhangsan"},
    "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=X",
}
QUOTE = {"msgtype": "text", "text": {"content": "这是今日的测试情况"}}


def parse(**fields) -> dict:
    return parse_bot_message(json.dumps({**BASE, **fields}, ensure_ascii=False))


@pytest.mark.parametrize(
    ("fields", "kind", "text"),
    [
        ({"msgtype": "text", "text": {"content": " hello "}, "quote": QUOTE}, "message", "hello"),
        (
            {
                "msgtype": "text",
                "text": {"content": "@RobotA 你好"},
                "chattype": "group",
                "chatid": "C1",
            },
            "message",
            "你好",
        ),
        (
            {
                "msgtype": "text",
                "text": {"content": "你好@助手 "},
                "chattype": "group",
                "chatid": "C1",
            },
            "message",
            "你好",
        ),
        (
            {
                "msgtype": "text",
                "text": {"content": "写信到 a@b.com"},
                "chattype": "group",
                "chatid": "C1",
            },
            "message",
            "写信到 a@b.com",
        ),
        ({"msgtype": "image", "image": {"url": "https://x/img"}}, "message", ""),
        ({"msgtype": "voice", "voice": {"content": "语音转文字"}}, "message", "语音转文字"),
        ({"msgtype": "file", "file": {"url": "https://x/f"}}, "message", ""),
        (
            {
                "msgtype": "video",
                "video": {"url": "https://x/v"},
                "quote": {"msgtype": "video", "video": {"url": "u"}},
            },
            "message",
            "",
        ),
        (
            {
                "msgtype": "mixed",
                "mixed": {
                    "msg_item": [
                        {"msgtype": "text", "text": {"content": "图文"}},
                        {"msgtype": "image", "image": {"url": "u"}},
                    ]
                },
            },
            "message",
            "图文",
        ),
        ({"msgtype": "stream", "stream": {"id": "S1"}}, "refresh", ""),
        (
            {"msgtype": "event", "event": {"eventtype": "enter_chat"}, "create_time": 1700000000},
            "enter_chat",
            "",
        ),
        (
            {
                "msgtype": "event",
                "event": {
                    "eventtype": "feedback_event",
                    "feedback_event": {
                        "id": "F",
                        "type": 2,
                        "content": "详细些",
                        "inaccurate_reason_list": [2, 4],
                    },
                },
            },
            "feedback_event",
            "",
        ),
        ({"msgtype": "future_type", "future_type": {"x": 1}}, "message", ""),
    ],
)
def test_types_and_events(fields: dict, kind: str, text: str) -> None:
    message = parse(**fields)
    assert callback_kind(message) == kind
    assert text_of(message) == text
    assert message["msgtype"] == fields["msgtype"]
    assert sender_id(message) == "zhangsan"


def test_template_card_event_fields_and_lists() -> None:
    message = parse(
        msgtype="event",
        chattype="group",
        chatid="CHAT",
        event={
            "eventtype": "template_card_event",
            "template_card_event": {
                "card_type": "vote_interaction",
                "event_key": "SUBMIT",
                "task_id": "T1",
                "selected_items": {
                    "selected_item": {"question_key": "q", "option_ids": {"option_id": "one"}}
                },
            },
        },
    )
    assert event_type(message) == "template_card_event"
    details = event_details(message)
    assert details["event_key"] == "SUBMIT"
    assert details["selected_items"]["selected_item"] == [
        {"question_key": "q", "option_ids": {"option_id": ["one"]}}
    ]
    assert conversation_id(message) == "group:CHAT"


def test_mixed_sent_as_a_json_string_is_parsed() -> None:
    inner = json.dumps({"msg_item": [{"msgtype": "text", "text": {"content": "a"}}]})
    assert text_of(parse(msgtype="mixed", mixed=inner)) == "a"


@pytest.mark.parametrize(
    "fields",
    [
        {"msgtype": "text"},
        {"msgtype": "text", "text": {"content": 5}},
        {"msgtype": "text", "text": "hi"},
        {"msgtype": "stream", "stream": {"id": ""}},
        {"msgtype": "stream", "stream": {}},
        {"msgtype": "event", "event": "enter_chat"},  # AstrBot's misreading: event is an object
        {"msgtype": "event", "event": {"eventtype": ""}},
        {
            "msgtype": "event",
            "event": {"eventtype": "template_card_event", "template_card_event": {"event_key": 1}},
        },
        {"msgtype": "mixed", "mixed": {"msg_item": [{"msgtype": "image", "image": {}}]}},
        {"msgtype": "mixed", "mixed": "[not json"},
        {"msgtype": ""},
        {"msgtype": 3},
        {"msgtype": "text", "text": {"content": "x"}, "from": "zhangsan"},
        {
            "msgtype": "text",
            "text": {"content": "x"},
            "quote": {"msgtype": "image", "image": {"url": 1}},
        },
        {"msgtype": "text", "text": {"content": "x"}, "msgid": 12},
    ],
)
def test_contradicting_the_docs_is_a_4xx(fields: dict) -> None:
    with pytest.raises(BotMessageError) as caught:
        parse(**fields)
    assert 400 <= caught.value.http_status < 500


@pytest.mark.parametrize(
    "plaintext",
    [
        "[]",
        '"text"',
        "{",
        '{"msgtype": "text"' + "," * 3,
        "[" * 50_000,
        '{"a":' * 20 + "1" + "}" * 20,
    ],
)
def test_non_objects_and_deep_documents(plaintext: str) -> None:
    with pytest.raises(BotMessageError):
        parse_bot_message(plaintext)


def test_nesting_is_measured_without_recursion_and_strings_do_not_count() -> None:
    assert nesting_depth('{"a": "[[[[{{{{", "b": [1, {"c": []}]}', 10) == 4
    assert nesting_depth("[" * 200_000 + "]" * 200_000, 16) == 17
    with pytest.raises(ValueError):
        nesting_depth("[}", 16)
    assert loads('{"a": [1, 2]}', max_bytes=100) == {"a": [1, 2]}
    for bad in ('{"a": Infinity}', '{"a": 1, "a": 2}', '["\\"]'):
        with pytest.raises(EnvelopeError):
            loads(bad, max_bytes=100)
    with pytest.raises(EnvelopeError, match="larger"):
        loads(b"[" + b"1," * 100 + b"1]", max_bytes=100)
