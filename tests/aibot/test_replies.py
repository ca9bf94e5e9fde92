"""Reply builders: stream frames, images, cards, welcome, update, markdown."""

from __future__ import annotations

import base64
import hashlib

import pytest

from app.wecom.aibot import (
    CONTENT_LIMIT,
    BotReplyError,
    Markdown,
    StreamImage,
    StreamWithCardReply,
    TemplateCardReply,
    UpdateCardReply,
    WelcomeText,
    stream_payload,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "t"},
    "task_id": "T_1@x",
    "button_list": [],
}


def test_stream_content_is_cut_on_a_character_boundary() -> None:
    text = "a" + "长" * 7000  # 21001 bytes
    frame = stream_payload("S", text, False)
    content = frame["stream"]["content"]
    assert len(content.encode()) <= CONTENT_LIMIT
    assert text.startswith(content) and len(content.encode()) > CONTENT_LIMIT - 3
    assert frame == {
        "msgtype": "stream",
        "stream": {"id": "S", "finish": False, "content": content},
    }


def test_images_only_on_the_final_frame_with_md5_of_the_raw_bytes() -> None:
    item = StreamImage(PNG).item()
    assert item["image"]["md5"] == hashlib.md5(PNG).hexdigest()
    assert base64.b64decode(item["image"]["base64"]) == PNG
    assert "msg_item" not in stream_payload("S", "x", False, [item])["stream"]
    final = stream_payload("S", "x", True, [item] * 12, feedback_id="F1")["stream"]
    assert len(final["msg_item"]) == 10 and final["feedback"] == {"id": "F1"}


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024)])
def test_bad_images_are_refused(data: bytes) -> None:
    with pytest.raises(BotReplyError):
        StreamImage(data)


def test_cards() -> None:
    assert TemplateCardReply(CARD, feedback_id="F").payload() == {
        "msgtype": "template_card",
        "template_card": {**CARD, "feedback": {"id": "F"}},
    }
    update = UpdateCardReply(CARD, userids=("u1",)).payload()
    assert update == {
        "response_type": "update_template_card",
        "userids": ["u1"],
        "template_card": CARD,
    }
    assert "userids" not in UpdateCardReply(CARD).payload()
    with pytest.raises(BotReplyError):
        TemplateCardReply({**CARD, "task_id": "has space"}).payload()
    with pytest.raises(BotReplyError):
        TemplateCardReply({"card_type": "button_interaction"}).payload()
    with pytest.raises(BotReplyError):
        TemplateCardReply({"card_type": "poster"}).payload()
    with pytest.raises(BotReplyError):
        StreamWithCardReply({**CARD, "task_id": "x" * 129})
    with pytest.raises(BotReplyError):
        Markdown("x", feedback_id="长" * 100).payload()


def test_welcome_and_markdown_and_lone_surrogates() -> None:
    assert WelcomeText("hi").payload() == {"msgtype": "text", "text": {"content": "hi"}}
    markdown = Markdown("**b**\ud800" + "长" * 8000).payload()["markdown"]["content"]
    assert markdown.startswith("**b**?") and len(markdown.encode()) <= CONTENT_LIMIT
