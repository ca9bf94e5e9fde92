"""What kf handlers may return, and the kf/send_msg payloads it becomes."""

from __future__ import annotations

import pytest

from app.wecom import ImageReply, NewsReply, TextReply, VideoReply
from app.wecom.kf_messages import (
    File,
    Image,
    Link,
    Location,
    MenuClick,
    MenuMiniProgram,
    MenuText,
    MenuView,
    MiniProgram,
    MsgMenu,
    Text,
    Video,
    Voice,
    from_api,
    to_kf_messages,
)
from app.wecom.replies import Article


def test_text_payload_drops_lone_surrogates():
    assert Text("好\ud800的").to_api() == ("text", {"content": "好的"})
    with pytest.raises(ValueError):
        Text("")
    with pytest.raises(TypeError):
        Text(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "msgtype"), [(Image, "image"), (Voice, "voice"), (Video, "video"), (File, "file")]
)
def test_media(cls, msgtype):
    assert cls("MEDIA").to_api() == (msgtype, {"media_id": "MEDIA"})
    with pytest.raises(ValueError):
        cls("")


def test_link_limits_are_utf8_bytes_and_optional_fields_are_omitted():
    assert Link("标题", "https://example.com").to_api() == (
        "link",
        {"title": "标题", "url": "https://example.com"},
    )
    full = Link("t", "https://e.com", thumb_media_id="THUMB", desc="说明").payload()
    assert full == {"title": "t", "url": "https://e.com", "desc": "说明", "thumb_media_id": "THUMB"}
    Link("字" * 42, "u")  # 126 bytes
    with pytest.raises(ValueError, match="title"):
        Link("字" * 43, "u")  # 129 bytes


def test_miniprogram_and_location():
    assert MiniProgram("wxapp", "标题", "THUMB", "pages/index").payload() == {
        "appid": "wxapp",
        "title": "标题",
        "thumb_media_id": "THUMB",
        "pagepath": "pages/index",
    }
    assert Location(23.1, 113.3, name="广州塔").payload() == {
        "latitude": 23.1,
        "longitude": 113.3,
        "name": "广州塔",
    }
    with pytest.raises(TypeError):
        Location("23.1", 113.3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Location(True, 113.3)  # type: ignore[arg-type]


def test_msgmenu_payload_and_limits():
    menu = MsgMenu(
        [
            MenuClick("101", "满意"),
            MenuView("https://e.com", "看看"),
            MenuMiniProgram("wxapp", "pages/a", "小程序"),
            MenuText("纯文本"),
        ],
        head_content="您满意吗",
        tail_content="谢谢",
    )
    assert menu.payload() == {
        "head_content": "您满意吗",
        "list": [
            {"type": "click", "click": {"id": "101", "content": "满意"}},
            {"type": "view", "view": {"url": "https://e.com", "content": "看看"}},
            {
                "type": "miniprogram",
                "miniprogram": {"appid": "wxapp", "pagepath": "pages/a", "content": "小程序"},
            },
            {"type": "text", "text": {"content": "纯文本"}},
        ],
        "tail_content": "谢谢",
    }
    assert from_api({"msgtype": "msgmenu", "msgmenu": menu.payload()}) == menu
    with pytest.raises(ValueError, match="at most 10"):
        MsgMenu([MenuClick(str(i), "x") for i in range(11)])
    with pytest.raises(ValueError):
        MsgMenu([])
    with pytest.raises(ValueError):
        MenuClick("x" * 65, "too long an id")
    with pytest.raises(TypeError):
        MsgMenu(["not an item"])  # type: ignore[list-item]


def test_to_kf_messages_accepts_what_handlers_return():
    assert to_kf_messages(None) == []
    assert to_kf_messages("") == []
    assert to_kf_messages("hi") == [Text("hi")]
    assert to_kf_messages(Image("M")) == [Image("M")]
    assert to_kf_messages(["a", Image("M")]) == [Text("a"), Image("M")]
    assert to_kf_messages({"msgtype": "image", "image": {"media_id": "M"}}) == [Image("M")]
    assert to_kf_messages({"msgtype": "file", "media_id": "F"}) == [File("F")]
    assert to_kf_messages({"msgtype": "link", "link": {"title": "t", "url": "u"}}) == [
        Link("t", "u")
    ]
    # The app's reply objects and XML-style dicts, where kf has the type.
    assert to_kf_messages(TextReply("x")) == [Text("x")]
    assert to_kf_messages(ImageReply("M")) == [Image("M")]
    assert to_kf_messages(VideoReply("V", title="t")) == [Video("V")]
    assert to_kf_messages({"MsgType": "text", "Content": "xml"}) == [Text("xml")]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (42, TypeError),
        ([["nested"]], TypeError),
        ({"msgtype": "news"}, ValueError),
        ({"msgtype": "image"}, ValueError),
        ({"msgtype": "msgmenu", "msgmenu": {"list": [{"type": "bogus"}]}}, ValueError),
        (NewsReply([Article("t")]), ValueError),
        ({"nothing": "here"}, ValueError),
    ],
)
def test_to_kf_messages_rejects(value, error):
    with pytest.raises(error):
        to_kf_messages(value)
