"""Passive replies: layout, hostile text, byte limits, to_reply, API equivalents."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.wecom.messages import parse_message
from app.wecom.replies import (
    Article,
    ImageReply,
    NewsReply,
    Reply,
    TextReply,
    UpdateButtonReply,
    VideoReply,
    VoiceReply,
    split_utf8,
    to_reply,
    truncate_utf8,
)
from app.wecom.xmlsafe import parse_xml, strip_invalid_xml_chars

from .samples import CORP_ID

ANY_TEXT = st.text(st.characters(exclude_categories=()))
NOW = 1718000200


def render(reply: Reply, to_user: str = "ZhangSan") -> dict[str, Any]:
    """Parse the rendered reply like an inbound message (so Articles.item is a list)."""
    return parse_message(reply.render(to_user, CORP_ID, NOW))


ARTICLES = [
    Article("标题一", "描述", "https://example.com/1", "https://example.com/1.png"),
    Article("Second", url="https://example.com/2"),
]
ALL_REPLIES: list[Reply] = [
    TextReply("你好 😀"),
    ImageReply("media-image"),
    VoiceReply("media-voice"),
    VideoReply("media-video", "片名", "简介"),
    VideoReply("media-video-bare"),
    NewsReply(ARTICLES),
    UpdateButtonReply("已处理"),
]


def test_text_layout_is_exact() -> None:
    assert TextReply("hi").render("ZhangSan", CORP_ID, NOW) == (
        "<xml><ToUserName><![CDATA[ZhangSan]]></ToUserName>"
        f"<FromUserName><![CDATA[{CORP_ID}]]></FromUserName>"
        "<CreateTime>1718000200</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[hi]]></Content></xml>"
    )


def test_header_of_every_reply() -> None:
    for reply in ALL_REPLIES:
        parsed = render(reply)
        assert parsed["ToUserName"] == "ZhangSan"
        assert parsed["FromUserName"] == CORP_ID
        assert parsed["CreateTime"] == str(NOW)
        assert parsed["MsgType"] == reply.msg_type


def test_bodies() -> None:
    assert render(TextReply("你好 😀"))["Content"] == "你好 😀"
    assert render(ImageReply("m1"))["Image"] == {"MediaId": "m1"}
    assert render(VoiceReply("m2"))["Voice"] == {"MediaId": "m2"}
    assert render(VideoReply("m3", "t", "d"))["Video"] == {
        "MediaId": "m3",
        "Title": "t",
        "Description": "d",
    }
    assert render(UpdateButtonReply("已处理"))["Button"] == {"ReplaceName": "已处理"}
    news = render(NewsReply(ARTICLES))
    assert news["ArticleCount"] == "2"
    assert news["Articles"]["item"] == [
        {
            "Title": "标题一",
            "Description": "描述",
            "PicUrl": "https://example.com/1.png",
            "Url": "https://example.com/1",
        },
        {"Title": "Second", "Description": "", "PicUrl": "", "Url": "https://example.com/2"},
    ]


@pytest.mark.parametrize(
    "text",
    ["a]]>b", "]]>", "<xml>&amp;</xml>", "x < y && y > z", "😀👍🏽🇨🇳", "quote \" and ' apos"],
)
def test_hostile_text_survives(text: str) -> None:
    reply = TextReply(text)
    assert render(reply)["Content"] == text
    assert render(reply, to_user=text)["ToUserName"] == text
    assert render(VideoReply(text, text, text))["Video"]["Title"] == text
    assert render(NewsReply([Article(text, text, text, text)]))["Articles"]["item"][0] == {
        "Title": text,
        "Description": text,
        "PicUrl": text,
        "Url": text,
    }


def test_control_characters_and_lone_surrogates_are_stripped() -> None:
    assert render(TextReply("a\x00b\x07c\ud83dd\ufffe\te\r\nf"))["Content"] == "abcd\te\r\nf"


def test_long_chinese_text_is_cut_to_2048_bytes() -> None:
    text = "中" * 5000
    content = render(TextReply(text))["Content"]
    assert content == "中" * 682  # 2046 bytes; a 683rd character would need 2049
    assert len(content.encode()) <= 2048


def test_cut_never_splits_an_emoji() -> None:
    content = render(TextReply("a" * 2046 + "😀"))["Content"]
    assert content == "a" * 2046


def test_text_at_the_limit_is_untouched() -> None:
    text = "a" * 2044 + "😀"
    assert render(TextReply(text))["Content"] == text


@given(ANY_TEXT)
def test_text_round_trips_through_the_parser(text: str) -> None:
    xml = TextReply(text).render("ZhangSan", CORP_ID, NOW)
    assert parse_xml(xml)["Content"] == truncate_utf8(strip_invalid_xml_chars(text), 2048)


CJK_AND_EMOJI = st.characters(
    min_codepoint=0x4E00, max_codepoint=0x1F64F, exclude_categories=("Cs",)
)


@given(st.text(CJK_AND_EMOJI, min_size=600))
def test_long_text_is_cut_on_a_character_boundary(text: str) -> None:
    content = render(TextReply(text))["Content"]
    cleaned = strip_invalid_xml_chars(text)  # the range holds U+FFFE and U+FFFF
    assert cleaned.startswith(content)
    assert 2048 - 4 < len(content.encode()) <= 2048 or content == cleaned


@given(ANY_TEXT)
def test_user_ids_round_trip(to_user: str) -> None:
    assert render(ImageReply("m"), to_user=to_user)["ToUserName"] == strip_invalid_xml_chars(
        to_user
    )


def test_news_limits() -> None:
    assert len(NewsReply([Article(str(i)) for i in range(8)]).articles) == 8
    with pytest.raises(ValueError, match="1 to 8"):
        NewsReply([Article(str(i)) for i in range(9)])
    with pytest.raises(ValueError, match="1 to 8"):
        NewsReply([])
    with pytest.raises(TypeError):
        NewsReply([{"title": "not an Article"}])  # type: ignore[list-item]


def test_replies_are_immutable_and_hashable() -> None:
    news = NewsReply(list(ARTICLES))
    assert news.articles == tuple(ARTICLES)
    assert news == NewsReply(tuple(ARTICLES))
    assert len({news, NewsReply(ARTICLES), TextReply("x"), TextReply("x")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        news.articles = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "make",
    [
        lambda: TextReply(None),
        lambda: ImageReply(1),
        lambda: VideoReply("m", title=None),
        lambda: Article(b"bytes"),
        lambda: UpdateButtonReply(None),
    ],
)
def test_non_text_fields_are_rejected(make: Any) -> None:
    with pytest.raises(TypeError):
        make()


@pytest.mark.parametrize("create_time", ["1718000200", 1.5, True, None])
def test_create_time_must_be_an_int(create_time: Any) -> None:
    with pytest.raises(TypeError):
        TextReply("x").render("u", CORP_ID, create_time)


# --- API equivalents --------------------------------------------------------------------


def test_api_messages() -> None:
    assert TextReply("hi\x00").to_api_message() == {"msgtype": "text", "text": {"content": "hi"}}
    assert ImageReply("m").to_api_message() == {"msgtype": "image", "image": {"media_id": "m"}}
    assert VoiceReply("m").to_api_message() == {"msgtype": "voice", "voice": {"media_id": "m"}}
    assert VideoReply("m", "t", "d").to_api_message() == {
        "msgtype": "video",
        "video": {"media_id": "m", "title": "t", "description": "d"},
    }
    assert NewsReply(ARTICLES).to_api_message() == {
        "msgtype": "news",
        "news": {
            "articles": [
                {
                    "title": "标题一",
                    "description": "描述",
                    "url": "https://example.com/1",
                    "picurl": "https://example.com/1.png",
                },
                {
                    "title": "Second",
                    "description": "",
                    "url": "https://example.com/2",
                    "picurl": "",
                },
            ]
        },
    }
    assert UpdateButtonReply("x").to_api_message() is None


def test_api_text_is_not_truncated() -> None:
    text = "中" * 5000
    assert TextReply(text).to_api_message()["text"]["content"] == text


# --- to_reply ---------------------------------------------------------------------------


def test_to_reply_simple_values() -> None:
    assert to_reply(None) is None
    assert to_reply("") is None
    assert to_reply("hello") == TextReply("hello")
    reply = ImageReply("m")
    assert to_reply(reply) is reply


@pytest.mark.parametrize("reply", ALL_REPLIES, ids=lambda r: type(r).__name__)
def test_to_reply_reads_back_the_rendered_xml(reply: Reply) -> None:
    assert to_reply(render(reply)) == reply


@pytest.mark.parametrize(
    "reply", [r for r in ALL_REPLIES if r.to_api_message()], ids=lambda r: type(r).__name__
)
def test_to_reply_reads_back_the_api_message(reply: Reply) -> None:
    assert to_reply(reply.to_api_message()) == reply


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"MsgType": "text", "Content": "hi"}, TextReply("hi")),
        ({"MsgType": "image", "MediaId": "m"}, ImageReply("m")),
        ({"MsgType": "voice", "MediaId": "m", "Ignored": 1}, VoiceReply("m")),
        ({"MsgType": "video", "MediaId": "m", "Title": "t"}, VideoReply("m", "t")),
        ({"MsgType": "update_button", "ReplaceName": "ok"}, UpdateButtonReply("ok")),
        (
            {"MsgType": "news", "Articles": [{"Title": "t", "Url": "u"}]},
            NewsReply([Article("t", url="u")]),
        ),
        ({"msgtype": "text", "content": "flat"}, TextReply("flat")),
        ({"msgtype": "image", "media_id": "m"}, ImageReply("m")),
        ({"msgtype": "video", "video": {"media_id": "m"}}, VideoReply("m")),
        (
            {"msgtype": "news", "articles": [{"title": "t", "picurl": "p"}]},
            NewsReply([Article("t", pic_url="p")]),
        ),
    ],
)
def test_to_reply_dicts(value: dict[str, Any], expected: Reply) -> None:
    assert to_reply(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"MsgType": "music"}, "unsupported"),
        ({"msgtype": "update_button", "replace_name": "x"}, "unsupported"),
        ({"msgtype": "markdown", "markdown": {"content": "x"}}, "unsupported"),
        ({"MsgType": ["text"]}, "unsupported"),
        ({"MsgType": "text"}, "Content"),
        ({"msgtype": "image", "image": {}}, "media_id"),
        ({"MsgType": "news", "Articles": "nope"}, "list of articles"),
        ({"msgtype": "news", "articles": ["nope"]}, "dict"),
        ({"msgtype": "news", "articles": [{"title": "x"}] * 9}, "1 to 8"),
        ({"Content": "no type"}, "MsgType"),
    ],
)
def test_to_reply_bad_dicts(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_reply(value)


@pytest.mark.parametrize("value", [42, b"bytes", ["list"], object(), 1.5])
def test_to_reply_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="cannot make a reply"):
        to_reply(value)


# --- truncate_utf8 / split_utf8 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("hello", 10, "hello"),
        ("hello", 5, "hello"),
        ("hello", 4, "hell"),
        ("中文", 5, "中"),
        ("中文", 6, "中文"),
        ("😀😀", 7, "😀"),
        ("😀", 3, ""),
        ("abc", 0, ""),
        ("", 0, ""),
    ],
)
def test_truncate_utf8(text: str, limit: int, expected: str) -> None:
    assert truncate_utf8(text, limit) == expected


def test_truncate_rejects_a_negative_limit() -> None:
    with pytest.raises(ValueError):
        truncate_utf8("x", -1)


@given(st.text(), st.integers(min_value=0, max_value=64))
def test_truncate_gives_the_longest_fitting_prefix(text: str, limit: int) -> None:
    cut = truncate_utf8(text, limit)
    assert text.startswith(cut)
    assert len(cut.encode()) <= limit
    if cut != text:
        assert len(text[: len(cut) + 1].encode()) > limit


def test_split_examples() -> None:
    assert split_utf8("", 10) == []
    assert split_utf8("short", 10) == ["short"]
    assert split_utf8("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert split_utf8("中文字符", 7) == ["中文", "字符"]
    assert split_utf8("😀😀😀", 5) == ["😀", "😀", "😀"]


def test_split_prefers_a_newline_in_the_last_quarter() -> None:
    text = "a" * 80 + "\n" + "b" * 50
    assert split_utf8(text, 100) == ["a" * 80 + "\n", "b" * 50]


def test_split_ignores_a_newline_too_early_in_the_chunk() -> None:
    text = "a" * 10 + "\n" + "b" * 150
    assert split_utf8(text, 100) == [text[:100], text[100:]]


def test_split_limit_must_fit_any_character() -> None:
    with pytest.raises(ValueError):
        split_utf8("x", 3)


def test_split_2048_byte_messages() -> None:
    text = "第一段\n" + "中" * 3000 + "\n结尾 😀"
    chunks = split_utf8(text, 2048)
    assert "".join(chunks) == text
    assert [len(c.encode()) <= 2048 for c in chunks] == [True] * len(chunks)
    assert chunks[0].startswith("第一段\n")


@given(st.text(), st.integers(min_value=4, max_value=64))
def test_split_properties(text: str, limit: int) -> None:
    chunks = split_utf8(text, limit)
    assert "".join(chunks) == text
    for chunk in chunks:
        data = chunk.encode("utf-8")
        assert 0 < len(data) <= limit
        assert data.decode("utf-8") == chunk
