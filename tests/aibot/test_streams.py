"""The bot endpoint in one process: streams, dedup, restarts, the 6-minute window, overflow."""

from __future__ import annotations

import time

from app.jobs.streams import (
    NOTE_CONTINUED,
    NOTE_INTERRUPTED,
    NOTE_UNKNOWN,
    StreamState,
    StreamStore,
)
from app.wecom.aibot import CONTENT_LIMIT
from tests.aibot import handlers_bot
from tests.helpers import wait_for


def frame_when(bot, stream_id: str, predicate, timeout: float = 5.0) -> dict:
    """Refresh until a frame satisfies ``predicate``; returns that frame."""

    def refreshed():
        frame = bot.refresh(stream_id).stream
        return frame if predicate(frame) else None

    return wait_for(refreshed, timeout)


def test_a_stream_grows_and_finishes(bot) -> None:
    first = bot.text("gate g1")
    assert first.status == 200
    stream = first.stream
    assert stream["finish"] is False and stream["content"] in ("", "first")
    frame_when(bot, stream["id"], lambda f: f["content"] == "first" and not f["finish"])
    handlers_bot.GATES["g1"].set()
    final = frame_when(bot, stream["id"], lambda f: f["finish"])
    assert final == {"id": stream["id"], "finish": True, "content": "first second"}
    assert bot.refresh(stream["id"]).stream == final  # refreshes after the end repeat it


def test_a_repeated_message_gets_the_same_stream_and_runs_once(bot) -> None:
    message = bot.message("text", {"content": "gate dup"})
    first, second = bot.send(message), bot.send(message)
    assert first.stream["id"] == second.stream["id"]
    handlers_bot.GATES["dup"].set()
    frame_when(bot, first.stream["id"], lambda f: f["finish"])
    assert handlers_bot.CALLS == ["dup"]


def test_unknown_and_orphaned_streams_are_finished_with_a_note(bot, bot_app) -> None:
    assert bot.refresh("no-such-stream").stream == {
        "id": "no-such-stream",
        "finish": True,
        "content": NOTE_UNKNOWN,
    }
    streams = StreamStore(lambda: bot_app.extensions["wecom"].store, "bot")
    streams.save(
        StreamState(
            "orphan",
            "saved part",
            owner="dead",
            alive_until=time.time() - 1,
            received_at=time.time(),
        )
    )
    frame = bot.refresh("orphan").stream
    assert frame == {"id": "orphan", "finish": True, "content": "saved part" + NOTE_INTERRUPTED}
    assert streams.load("orphan").finished


def test_an_answer_longer_than_a_frame_ends_through_response_url(bot, catcher) -> None:
    first = bot.text("long")
    final = frame_when(bot, first.stream["id"], lambda f: f["finish"])
    assert final["content"].endswith(NOTE_CONTINUED)
    assert len(final["content"].encode()) <= CONTENT_LIMIT
    [post] = catcher.wait(1)
    rest = post["body"]["markdown"]["content"]
    assert post["body"]["msgtype"] == "markdown"
    assert final["content"][: -len(NOTE_CONTINUED)] + rest == handlers_bot.LONG


def test_the_window_closes_a_slow_stream_and_the_rest_follows(bot_config, catcher) -> None:
    from app import create_app
    from app.devtools.bot_simulator import BotSimulator
    from tests.aibot.conftest import BOT_AES_KEY, BOT_TOKEN
    from tests.conftest import client_transport

    app = create_app({**bot_config, "WECOM_BOT_STREAM_WINDOW": "1"})
    try:
        bot = BotSimulator(
            "/bot",
            BOT_TOKEN,
            BOT_AES_KEY,
            transport=client_transport(app.test_client()),
            response_url=catcher.url,
        )
        first = bot.text("gate window")
        closed = frame_when(bot, first.stream["id"], lambda f: f["finish"])
        assert closed["content"] == "first" + NOTE_CONTINUED
        assert catcher.posts() == []
        handlers_bot.GATES["window"].set()
        [post] = catcher.wait(1)
        assert post["body"] == {"msgtype": "markdown", "markdown": {"content": " second"}}
    finally:
        handlers_bot.GATES["window"].set()
        app.extensions["wecom_bot"].stop()


def test_images_go_on_the_final_frame_only(bot) -> None:
    first = bot.text("image")
    assert "msg_item" not in frame_when(bot, first.stream["id"], lambda f: f["content"] == "pic")
    handlers_bot.GATES["image"].set()
    final = frame_when(bot, first.stream["id"], lambda f: f["finish"])
    assert final["content"] == "pic"
    assert [item["msgtype"] for item in final["msg_item"]] == ["image"]


def test_the_card_of_a_stream_goes_once(bot) -> None:
    message = bot.message("text", {"content": "cardstream"})
    first = bot.send(message)
    assert first.reply["msgtype"] == "stream_with_template_card"
    assert first.reply["template_card"]["task_id"] == "T1"
    again = bot.refresh(first.stream["id"])
    assert again.reply["msgtype"] == "stream"
    repeated = bot.send(message)  # WeCom repeats the message: same stream, no second card
    assert (repeated.reply["msgtype"], repeated.stream["id"]) == ("stream", first.stream["id"])
    handlers_bot.GATES["cardstream"].set()
    assert frame_when(bot, first.stream["id"], lambda f: f["finish"])["content"] == "with card"


def test_a_slow_handler_opens_an_empty_stream_first(bot) -> None:
    first = bot.text("late s")
    assert first.stream["content"] == "" and first.stream["finish"] is False
    handlers_bot.GATES["s"].set()
    assert frame_when(bot, first.stream["id"], lambda f: f["finish"])["content"] == "late text"


def test_feedback_id_rides_on_the_first_frame(bot) -> None:
    assert bot.text("feedback").stream["feedback"] == {"id": "FB1"}


def test_passive_card_no_answer_and_refused_types(bot, caplog) -> None:
    assert bot.text("card").reply == {
        "msgtype": "template_card",
        "template_card": handlers_bot.CARD,
    }
    assert (bot.text("nothing").status, bot.text("nothing").body) == (200, b"")
    refused = bot.text("wrong")
    assert (refused.status, refused.body) == (200, b"")
    assert "wrong returned WelcomeText for a message callback" in caplog.text
    failed = bot.text("boom")
    assert (failed.status, failed.body) == (200, b"")
    assert "handler bug" in caplog.text


def test_a_bad_chunk_ends_the_stream_with_what_came(bot, caplog) -> None:
    first = bot.text("badchunk")
    final = frame_when(bot, first.stream["id"], lambda f: f["finish"])
    assert final["content"] == "ok so far"
    assert "a stream yielded int" in caplog.text


def test_events(bot, catcher) -> None:
    assert bot.send(bot.event("enter_chat")).reply == {
        "msgtype": "text",
        "text": {"content": "欢迎"},
    }
    click = {"card_type": "button_interaction", "event_key": "UPD", "task_id": "T9"}
    update = bot.send(bot.event("template_card_event", click)).reply
    assert update == {
        "response_type": "update_template_card",
        "template_card": {**handlers_bot.CARD, "task_id": "T9"},
    }
    markdown = bot.send(bot.event("template_card_event", {**click, "event_key": "MD"}))
    assert (markdown.status, markdown.body) == (200, b"")
    [post] = catcher.wait(1)
    assert post["body"] == {"msgtype": "markdown", "markdown": {"content": "**clicked**"}}
    assert post["path"].endswith("response_code=SIMULATED")


def test_feedback_events_get_an_empty_answer_whatever_the_handler_says(bot, caplog) -> None:
    rating = {"id": "FB1", "type": 1}
    assert bot.send(bot.event("feedback_event", rating)).body == b""
    handlers_bot.FEEDBACK_ANSWERS.append("thanks")
    assert bot.send(bot.event("feedback_event", rating)).body == b""
    assert "returned str for a feedback_event callback, which accepts nothing" in caplog.text
