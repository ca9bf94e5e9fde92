"""The server-sent events parser."""

from __future__ import annotations

import pytest

from app.infra.llm.sse import SseError, SseEvent, SseParser


def feed_all(*chunks: bytes) -> list[SseEvent]:
    parser = SseParser(max_line=64)
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_events_lines_comments_and_fields() -> None:
    stream = b': ping\n\ndata: a\ndata:  b\n\nevent: end\nid: 7\ndata: {"x": 1}\n\ndata: unfinished'
    assert feed_all(stream) == [
        SseEvent("a\n b"),
        SseEvent('{"x": 1}', event="end", id="7"),
    ]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_even_split_across_chunks(ending: bytes) -> None:
    stream = b"data: one" + ending + ending + b"data: two" + ending + ending
    whole = feed_all(stream)
    byte_by_byte = feed_all(*(stream[i : i + 1] for i in range(len(stream))))
    assert whole == byte_by_byte == [SseEvent("one"), SseEvent("two")]


def test_utf8_split_inside_a_character() -> None:
    data = "data: 你好\n\n".encode()
    assert feed_all(data[:7], data[7:]) == [SseEvent("你好")]


def test_a_line_without_end_is_bounded() -> None:
    with pytest.raises(SseError):
        feed_all(b"data: " + b"x" * 100)
