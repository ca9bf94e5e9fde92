"""A late answer is at most 5 messages: a huge one is cut, its last part ending with "…"."""

from __future__ import annotations

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.store import JobState
from app.jobs.app_answers import MAX_PARTS, TEXT_LIMIT, outbox_entry
from app.wecom import TextReply
from tests.conftest import CORP_ID
from tests.helpers import wait_for

SECRET = "cap-secret"


def contents(entry) -> list[str]:
    return [message["text"]["content"] for message in entry["messages"]]


@pytest.mark.parametrize("text", ["长" * 400_000, "a" * (MAX_PARTS * TEXT_LIMIT + 1)])
def test_long_text_is_cut_to_five_parts_ending_with_an_ellipsis(text):
    parts = contents(outbox_entry({"FromUserName": "u"}, TextReply(text)))
    assert len(parts) == MAX_PARTS
    assert all(len(part.encode("utf-8")) <= TEXT_LIMIT for part in parts)
    assert parts[-1].endswith("…")
    assert text.startswith("".join(parts)[:-1])


def test_text_that_fits_five_parts_is_not_cut():
    text = "b" * (MAX_PARTS * TEXT_LIMIT)
    parts = contents(outbox_entry({"FromUserName": "u"}, TextReply(text)))
    assert len(parts) == MAX_PARTS
    assert "".join(parts) == text


@pytest.fixture
def fake():
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return app_config | {
        "WECOM_HANDLERS": "tests.handlers_hostile",
        "WECOM_REPLY_DEADLINE": 0.3,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_BASE": fake.base_url,
    }


def test_a_huge_late_answer_is_five_message_send_calls(app, wecom, fake):
    assert wecom.send_text("huge 0.5", MsgId="801").body == b""
    store = app.extensions["wecom"].store
    wait_for(lambda: store.get_job("app:msg:801").state == JobState.DONE)
    sent = [item["body"]["text"]["content"] for item in fake.sent("message/send")]
    assert len(sent) == MAX_PARTS
    assert sent[-1].endswith("…")
