"""Outbox entries of the "kf" kind: msgids, parts, limits, event codes."""

from __future__ import annotations

import logging
import re

from app.jobs.kf_answers import MAX_MESSAGES, is_own_msgid, outbox_entry, reply_msgid
from app.wecom.kf_messages import Image, MenuClick, MsgMenu, Text

KEY = "kf:wkA:MSG1"


def customer(**fields) -> dict:
    return {"msgid": "MSG1", "origin": 3, "external_userid": "wm1", "msgtype": "text"} | fields


def welcome_event(**fields) -> dict:
    event = {"event_type": "enter_session", "external_userid": "wm1", "welcome_code": "CODE"}
    return {"msgid": "MSG1", "origin": 4, "msgtype": "event", "event": event | fields}


def test_msgids_are_stable_distinct_and_valid():
    assert reply_msgid(KEY, 0) == reply_msgid(KEY, 0)
    assert reply_msgid(KEY, 0) != reply_msgid(KEY, 1) != reply_msgid("kf:wkA:MSG2", 1)
    assert re.fullmatch(r"[0-9A-Za-z_-]{32}", reply_msgid(KEY, 0))
    assert is_own_msgid(reply_msgid(KEY, 3))
    assert not is_own_msgid("ordinaryCustomerMsgId")


def test_answer_to_a_customer():
    entry = outbox_entry(KEY, "wkA", customer(), [Text("hi"), Image("M")])
    assert entry == {
        "to": "wm1",
        "open_kfid": "wkA",
        "messages": [
            {"msgid": reply_msgid(KEY, 0), "msgtype": "text", "text": {"content": "hi"}},
            {"msgid": reply_msgid(KEY, 1), "msgtype": "image", "image": {"media_id": "M"}},
        ],
    }
    assert outbox_entry(KEY, "wkA", customer(), []) is None


def test_long_text_is_split_and_at_most_five_messages_go(caplog):
    entry = outbox_entry(KEY, "wkA", customer(), [Text("长" * 1500)])
    parts = [m["text"]["content"] for m in entry["messages"]]
    assert "".join(parts) == "长" * 1500 and all(len(p.encode()) <= 2048 for p in parts)
    caplog.set_level(logging.WARNING)
    entry = outbox_entry(KEY, "wkA", customer(), [Text(str(i)) for i in range(7)])
    assert [m["text"]["content"] for m in entry["messages"]] == ["0", "1", "2", "3", "4"]
    assert len(entry["messages"]) == MAX_MESSAGES and "WeCom takes 5" in caplog.text


def test_event_with_a_code_gets_one_text_or_menu_through_send_msg_on_event(caplog):
    entry = outbox_entry(KEY, "wkA", welcome_event(), [Text("欢" * 1000), Text("more")])
    (message,) = entry["messages"]
    assert message["code"] == "CODE"
    assert len(message["text"]["content"].encode()) <= 2048
    menu = MsgMenu([MenuClick("1", "是")], head_content="要帮忙吗")
    assert outbox_entry(KEY, "wkA", welcome_event(), [menu])["messages"][0]["msgtype"] == "msgmenu"
    caplog.set_level(logging.WARNING)
    assert outbox_entry(KEY, "wkA", welcome_event(), [Image("M")]) is None
    assert "text or msgmenu only" in caplog.text


def test_event_without_code_goes_to_its_customer_or_nowhere():
    recall = {"msgid": "MSG1", "origin": 4, "msgtype": "event"}
    recall["event"] = {"event_type": "user_recall_msg", "external_userid": "wm9"}
    entry = outbox_entry(KEY, "wkA", recall, [Text("ok")])
    assert entry["to"] == "wm9" and "code" not in entry["messages"][0]
    status = {"msgid": "MSG1", "origin": 4, "msgtype": "event"}
    status["event"] = {"event_type": "servicer_status_change", "servicer_userid": "z"}
    assert outbox_entry(KEY, "wkA", status, [Text("ok")]) is None
