"""Decrypted callbacks → dicts: one sample per documented message and event type."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.wecom.errors import MessageError
from app.wecom.messages import REPEATED, dedup_key, parse_message
from app.wecom.replies import Article, NewsReply

from .samples import AGENT_ID, CORP_ID, OFFICIAL_DOC_POST, OFFICIAL_SAMPLE_POST, SAMPLES

KF = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJT"
CAL = "wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA"
SCHEDULE = "17c7d2bd9f20d652840f72f59e796AAA"
EXT = "wmEAlECwAAHrbWYDetiu3Af13xlYDDNA"
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
TAG = "etm7wjCgAA5ASQ3FaKVL5xLa0ANv1xxx"

# name → fields the parsed message must have (nested values compared whole)
EXPECTED: dict[str, dict[str, Any]] = {
    "text": {
        "FromUserName": "LiSi",
        "CreateTime": "1718000001",
        "MsgType": "text",
        "Content": '你好，请问 <报销> & "差旅" 流程？',
        "MsgId": "7390000000000000001",
        "AgentID": AGENT_ID,
    },
    "image": {
        "MsgType": "image",
        "PicUrl": "https://wework.qpic.cn/wwpic/example/0",
        "MediaId": "2-G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0",
        "MsgId": "7390000000000000002",
    },
    "voice": {"MsgType": "voice", "MediaId": "1B-voice-media-id", "Format": "amr"},
    "video": {
        "MsgType": "video",
        "MediaId": "1C-video-media-id",
        "ThumbMediaId": "1D-thumb-media-id",
    },
    "location": {
        "MsgType": "location",
        "Location_X": "23.134521",
        "Location_Y": "113.358803",
        "Scale": "15",
        "Label": "广州市天河区",
        "AppType": "wxwork",
    },
    "link": {
        "MsgType": "link",
        "Title": "季度报告",
        "Description": "第二季度",
        "Url": "https://example.com/report?q=2&lang=zh",
        "PicUrl": "https://example.com/cover.png",
    },
    "event_subscribe": {"Event": "subscribe", "AgentID": AGENT_ID},
    "event_unsubscribe": {"Event": "unsubscribe", "AgentID": AGENT_ID},
    "event_enter_agent": {"Event": "enter_agent", "EventKey": "", "AgentID": AGENT_ID},
    "event_location": {
        "Event": "LOCATION",
        "Latitude": "23.104105",
        "Longitude": "113.320107",
        "Precision": "65.000000",
        "AppType": "wxwork",
    },
    "event_batch_job_result": {
        "FromUserName": "sys",
        "Event": "batch_job_result",
        "BatchJob": {
            "JobId": "S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4",
            "JobType": "sync_user",
            "ErrCode": "0",
            "ErrMsg": "ok",
        },
    },
    "event_click": {"Event": "click", "EventKey": "MENU_REPORT"},
    "event_view": {"Event": "view", "EventKey": "https://example.com/menu?a=1&b=2"},
    "event_view_miniprogram": {"Event": "view_miniprogram", "EventKey": "pages/index/index"},
    "event_scancode_push": {
        "Event": "scancode_push",
        "EventKey": "SCAN_1",
        "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "https://example.com/qr/42"},
    },
    "event_scancode_waitmsg": {
        "Event": "scancode_waitmsg",
        "ScanCodeInfo": {"ScanType": "barcode", "ScanResult": "EAN_13,6901234567892"},
    },
    "event_pic_sysphoto": {
        "Event": "pic_sysphoto",
        "SendPicsInfo": {
            "Count": "1",
            "PicList": {"item": [{"PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185"}]},
        },
    },
    "event_pic_photo_or_album": {
        "Event": "pic_photo_or_album",
        "SendPicsInfo": {
            "Count": "2",
            "PicList": {
                "item": [
                    {"PicMd5Sum": "5a75aaca956d97be686719218f275c6b"},
                    {"PicMd5Sum": "68d6c1a8f9e0a4bd7c5b2b65c5f4c7d1"},
                ]
            },
        },
    },
    "event_pic_weixin": {
        "Event": "pic_weixin",
        "SendPicsInfo": {"Count": "0", "PicList": {"item": []}},
    },
    "event_location_select": {
        "Event": "location_select",
        "EventKey": "WHERE",
        "SendLocationInfo": {
            "Location_X": "23",
            "Location_Y": "113",
            "Scale": "15",
            "Label": " 广州市海珠区客村艺苑路 106号",
            "Poiname": "",
        },
        "AppType": "wxwork",
    },
    "event_open_approval_change": {
        "Event": "open_approval_change",
        "ApprovalInfo": {
            "ThirdNo": "PAY-20240610-0001",
            "OpenSpName": "付款",
            "OpenTemplateId": "tpl-pay-1",
            "OpenSpStatus": "1",
            "ApplyTime": "1718000000",
            "ApplyUserName": "王五",
            "ApplyUserId": "WangWu",
            "ApplyUserParty": "财务部",
            "ApplyUserImage": "https://example.com/a.png",
            "ApprovalNodes": {
                "ApprovalNode": [
                    {
                        "NodeStatus": "1",
                        "NodeAttr": "1",
                        "NodeType": "1",
                        "Items": {
                            "Item": [
                                {
                                    "ItemName": "赵六",
                                    "ItemUserId": "ZhaoLiu",
                                    "ItemImage": "https://example.com/z.png",
                                    "ItemStatus": "1",
                                    "ItemSpeech": "",
                                    "ItemOpTime": "0",
                                }
                            ]
                        },
                    }
                ]
            },
            "NotifyNodes": {
                "NotifyNode": [
                    {
                        "ItemName": "孙七",
                        "ItemUserId": "SunQi",
                        "ItemImage": "https://example.com/s.png",
                    }
                ]
            },
            "approverstep": "0",
        },
    },
    "event_sys_approval_change": {
        "Event": "sys_approval_change",
        "ApprovalInfo": {
            "SpNo": "202406100001",
            "SpName": "报销",
            "SpStatus": "1",
            "TemplateId": "C4NyExampleTemplateId",
            "ApplyTime": "1718000000",
            "Applyer": {"UserId": "WangWu", "Party": "2"},
            "SpRecord": [
                {
                    "SpStatus": "2",
                    "ApproverAttr": "1",
                    "Details": [
                        {
                            "Approver": {"UserId": "ZhaoLiu"},
                            "Speech": "同意",
                            "SpStatus": "2",
                            "SpTime": "1718000050",
                        }
                    ],
                },
                {
                    "SpStatus": "1",
                    "ApproverAttr": "2",
                    "Details": [
                        {
                            "Approver": {"UserId": "SunQi"},
                            "Speech": "",
                            "SpStatus": "1",
                            "SpTime": "0",
                        },
                        {
                            "Approver": {"UserId": "ZhouBa"},
                            "Speech": "",
                            "SpStatus": "1",
                            "SpTime": "0",
                        },
                    ],
                },
            ],
            "Notifyer": [{"UserId": "WuJiu"}],
            "Comments": [
                {
                    "CommentUserInfo": {"UserId": "ZhaoLiu"},
                    "CommentTime": "1718000060",
                    "CommentContent": "请补发票",
                    "CommentId": "6830000000000000001",
                }
            ],
            "StatuChangeEvent": "2",
        },
    },
    "event_share_agent_change": {"Event": "share_agent_change", "AgentID": AGENT_ID},
    "event_share_chain_change": {"Event": "share_chain_change", "AgentID": AGENT_ID},
    "event_template_card_event": {
        "Event": "template_card_event",
        "EventKey": "submit",
        "TaskId": "task-20240610-01",
        "CardType": "multiple_interaction",
        "ResponseCode": "rc-Abc123",
        "SelectedItems": {
            "SelectedItem": [
                {"QuestionKey": "city", "OptionIds": {"OptionId": ["gz"]}},
                {"QuestionKey": "days", "OptionIds": {"OptionId": ["mon", "tue"]}},
            ]
        },
    },
    "event_template_card_event_single": {
        "CardType": "vote_interaction",
        "SelectedItems": {
            "SelectedItem": [{"QuestionKey": "lunch", "OptionIds": {"OptionId": ["noodles"]}}]
        },
    },
    "event_template_card_menu_event": {
        "Event": "template_card_menu_event",
        "EventKey": "mute",
        "TaskId": "task-20240610-03",
        "CardType": "text_notice",
        "ResponseCode": "rc-Ghi789",
    },
    "event_inactive_alert": {"Event": "inactive_alert", "EffectTime": "1720600000"},
    "event_close_inactive_agent": {"Event": "close_inactive_agent", "AgentID": AGENT_ID},
    "event_reopen_inactive_agent": {"Event": "reopen_inactive_agent", "AgentID": AGENT_ID},
    "event_low_active_alert": {"Event": "low_active_alert", "EffectTime": "1720600000"},
    "event_low_active": {"Event": "low_active", "AgentID": AGENT_ID},
    "event_active_restored": {"Event": "active_restored", "AgentID": AGENT_ID},
    "event_kf_account_auth_change": {
        "Event": "kf_account_auth_change",
        "AuthAddOpenKfId": [KF + "w", KF + "x"],
        "AuthDelOpenKfId": [KF + "y"],
    },
    "event_kf_account_auth_change_single": {
        "AuthAddOpenKfId": [KF + "z"],
        "AuthDelOpenKfId": [],
    },
    "event_taskcard_click": {"Event": "taskcard_click", "EventKey": "agree", "TaskId": "tc-1"},
    "event_modify_calendar": {"Event": "modify_calendar", "CalId": CAL},
    "event_delete_calendar": {"Event": "delete_calendar", "CalId": CAL},
    "event_add_schedule": {"Event": "add_schedule", "CalId": CAL, "ScheduleId": SCHEDULE},
    "event_modify_schedule": {"Event": "modify_schedule", "ScheduleId": SCHEDULE},
    "event_delete_schedule": {"Event": "delete_schedule", "ScheduleId": SCHEDULE},
    "event_respond_schedule": {"Event": "respond_schedule", "ScheduleId": SCHEDULE},
    "event_book_meeting_room": {"Event": "book_meeting_room", "MeetingRoomId": "7"},
    "event_cancel_meeting_room": {"Event": "cancel_meeting_room", "MeetingRoomId": "7"},
    "event_living_status_change": {"Event": "living_status_change"},
    "event_msgaudit_notify": {"Event": "msgaudit_notify", "AgentID": AGENT_ID},
    "event_customer_acquisition": {"Event": "customer_acquisition", "ChangeType": "balance_low"},
    "event_security": {"Event": "security", "ChangeType": "change_domain_ip"},
    "contact_create_user": {
        "FromUserName": "sys",
        "Event": "change_contact",
        "ChangeType": "create_user",
        "UserID": "ZhangSan",
        "Name": "张三",
        "Department": "1,2,3",
        "MainDepartment": "1",
        "IsLeaderInDept": "1,0,0",
        "DirectLeader": "LiSi,WangWu",
        "Position": "产品经理",
        "Mobile": "13800000000",
        "Gender": "1",
        "Email": "zhangsan@example.com",
        "BizMail": "zhangsan@corp.example.com",
        "Status": "1",
        "Avatar": "https://example.com/avatar.png",
        "Alias": "zhangsan",
        "Telephone": "020-12345678",
        "Address": "广州市",
        "ExtAttr": {
            "Item": [
                {"Name": "爱好", "Type": "0", "Text": {"Value": "旅游"}},
                {
                    "Name": "主页",
                    "Type": "1",
                    "Web": {"Title": "个人主页", "Url": "https://example.com/zs"},
                },
            ]
        },
    },
    "contact_update_user": {
        "ChangeType": "update_user",
        "UserID": "ZhangSan",
        "NewUserID": "ZhangSan2",
        "Department": "1,4",
        "ExtAttr": {"Item": [{"Name": "爱好", "Type": "0", "Text": {"Value": ""}}]},
    },
    "contact_delete_user": {"ChangeType": "delete_user", "UserID": "ZhangSan2"},
    "contact_create_party": {
        "ChangeType": "create_party",
        "Id": "4",
        "Name": "研发部",
        "ParentId": "1",
        "Order": "100000000",
    },
    "contact_update_party": {"ChangeType": "update_party", "Id": "4", "Name": "研发中心"},
    "contact_delete_party": {"ChangeType": "delete_party", "Id": "4"},
    "contact_update_tag": {
        "ChangeType": "update_tag",
        "TagId": "12",
        "AddUserItems": "ZhangSan,LiSi",
        "DelUserItems": "WangWu",
        "AddPartyItems": "1,4",
        "DelPartyItems": "",
    },
    "external_contact_add": {
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": "LiSi",
        "ExternalUserID": EXT,
        "State": "expo-2024",
        "WelcomeCode": "WELCOMECODE-1",
    },
    "external_contact_edit": {"ChangeType": "edit_external_contact", "ExternalUserID": EXT},
    "external_contact_add_half": {
        "ChangeType": "add_half_external_contact",
        "State": "",
        "WelcomeCode": "WELCOMECODE-2",
    },
    "external_contact_del": {"ChangeType": "del_external_contact", "Source": "DELETE_BY_TRANSFER"},
    "external_contact_del_follow_user": {"ChangeType": "del_follow_user", "UserID": "LiSi"},
    "external_contact_transfer_fail": {
        "ChangeType": "transfer_fail",
        "FailReason": "customer_refused",
    },
    "external_chat_create": {
        "Event": "change_external_chat",
        "ChatId": CHAT,
        "ChangeType": "create",
    },
    "external_chat_update_add_member": {
        "ChangeType": "update",
        "UpdateDetail": "add_member",
        "JoinScene": "1",
        "MemChangeCnt": "1",
        "MemChangeList": {"Item": [EXT]},
        "LastMemVer": "9c3f97c2ada667dfb5f6d03308d963e1",
        "CurMemVer": "71217227bbd112ecfe3a49c482195cb4",
    },
    "external_chat_update_del_member": {
        "UpdateDetail": "del_member",
        "QuitScene": "0",
        "MemChangeCnt": "2",
        "MemChangeList": {"Item": [EXT, "LiSi"]},
    },
    "external_chat_dismiss": {"ChatId": CHAT, "ChangeType": "dismiss"},
    "external_tag_create": {
        "Event": "change_external_tag",
        "Id": TAG,
        "TagType": "tag",
        "ChangeType": "create",
        "StrategyId": "1",
    },
    "external_tag_update": {"TagType": "tag_group", "ChangeType": "update"},
    "external_tag_delete": {"TagType": "tag", "ChangeType": "delete"},
    "external_tag_shuffle": {"Id": TAG, "ChangeType": "shuffle"},
    "kf_msg_or_event": {
        "ToUserName": CORP_ID,
        "CreateTime": "1718000200",
        "MsgType": "event",
        "Event": "kf_msg_or_event",
        "Token": "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
        "OpenKfId": KF + "w",
    },
}

# Every message type and event type of protocol reference §5.1-5.4 and §8.2.
DOCUMENTED_MSG_TYPES = {"text", "image", "voice", "video", "location", "link"}
DOCUMENTED_EVENTS = {
    "subscribe", "unsubscribe", "enter_agent", "LOCATION", "batch_job_result", "change_contact",
    "click", "view", "view_miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
    "pic_photo_or_album", "pic_weixin", "location_select", "open_approval_change",
    "sys_approval_change", "share_agent_change", "share_chain_change", "template_card_event",
    "template_card_menu_event", "inactive_alert", "close_inactive_agent", "reopen_inactive_agent",
    "low_active_alert", "low_active", "active_restored", "change_external_contact",
    "change_external_chat", "change_external_tag", "kf_msg_or_event", "kf_account_auth_change",
    "taskcard_click", "modify_calendar", "delete_calendar", "add_schedule", "modify_schedule",
    "delete_schedule", "respond_schedule", "book_meeting_room", "cancel_meeting_room",
    "living_status_change", "msgaudit_notify", "customer_acquisition", "security",
}  # fmt: skip
DOCUMENTED_CHANGE_TYPES = {
    "change_contact": {
        "create_user", "update_user", "delete_user", "create_party", "update_party",
        "delete_party", "update_tag",
    },
    "change_external_contact": {
        "add_external_contact", "edit_external_contact", "add_half_external_contact",
        "del_external_contact", "del_follow_user", "transfer_fail",
    },
    "change_external_chat": {"create", "update", "dismiss"},
    "change_external_tag": {"create", "update", "delete", "shuffle"},
}  # fmt: skip


def test_every_sample_has_expectations() -> None:
    assert set(EXPECTED) == set(SAMPLES)


def test_samples_cover_every_documented_type() -> None:
    parsed = [parse_message(xml) for xml in SAMPLES.values()]
    assert {m["MsgType"] for m in parsed} == DOCUMENTED_MSG_TYPES | {"event"}
    assert {m["Event"] for m in parsed if m["MsgType"] == "event"} == DOCUMENTED_EVENTS
    for event, change_types in DOCUMENTED_CHANGE_TYPES.items():
        assert {m["ChangeType"] for m in parsed if m.get("Event") == event} == change_types


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample(name: str) -> None:
    message = parse_message(SAMPLES[name])
    for key, value in EXPECTED[name].items():
        assert message[key] == value, key
    assert message["ToUserName"] == CORP_ID
    assert re.fullmatch(r"17180\d{5}", message["CreateTime"])


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_leaf_is_a_string(name: str) -> None:
    leaves = _leaves(parse_message(SAMPLES[name]))
    assert leaves
    assert all(isinstance(leaf, str) for leaf in leaves)


def test_msgid_beyond_2_53_stays_exact() -> None:
    message = parse_message(OFFICIAL_DOC_POST.plaintext)
    assert message["MsgId"] == "4561255354251345929"
    assert int(message["MsgId"]) > 2**53
    assert float(message["MsgId"]) != int(message["MsgId"])  # why it must stay a string


def test_official_plaintexts() -> None:
    doc = parse_message(OFFICIAL_DOC_POST.plaintext)
    assert doc == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }
    no_cdata = parse_message(OFFICIAL_SAMPLE_POST.plaintext)
    assert no_cdata["Content"] == "你好"
    assert no_cdata["FromUserName"] == "ChenJiaShun"


def test_news_articles_are_a_list_even_with_one_item() -> None:
    xml = NewsReply([Article("only", url="https://example.com")]).render("u", CORP_ID, 1)
    assert parse_message(xml)["Articles"] == {
        "item": [{"Title": "only", "Description": "", "PicUrl": "", "Url": "https://example.com"}]
    }


def test_repeated_names_are_lists_only_under_their_parent() -> None:
    xml = "<xml><Other><item>1</item><Item>2</Item></Other><OptionId>3</OptionId></xml>"
    assert parse_message(xml) == {"Other": {"item": "1", "Item": "2"}, "OptionId": "3"}


def test_empty_containers_become_empty_lists() -> None:
    xml = "<xml><ExtAttr/><SelectedItems></SelectedItems><MemChangeList/></xml>"
    assert parse_message(xml) == {
        "ExtAttr": {"Item": []},
        "SelectedItems": {"SelectedItem": []},
        "MemChangeList": {"Item": []},
    }


def test_every_repeated_pair_is_forced() -> None:
    for parent, child in REPEATED:
        if parent is None:
            xml = f"<xml><{child}>v</{child}></xml>"
            assert parse_message(xml)[child] == ["v"]
        else:
            xml = f"<xml><{parent}><{child}>v</{child}></{parent}></xml>"
            assert parse_message(xml)[parent][child] == ["v"]


def test_root_named_like_a_repeated_element_is_not_a_list() -> None:
    assert parse_message("<AuthAddOpenKfId><A>1</A></AuthAddOpenKfId>") == {"A": "1"}


def test_unknown_types_parse_generically() -> None:
    xml = "<xml><MsgType>shortvideo</MsgType><MediaId>m</MediaId><MsgId>1</MsgId></xml>"
    assert parse_message(xml) == {"MsgType": "shortvideo", "MediaId": "m", "MsgId": "1"}


def test_bytes_are_accepted() -> None:
    assert parse_message(SAMPLES["text"].encode())["Content"].startswith("你好")


@pytest.mark.parametrize(
    "xml",
    ["", "<xml>", "<xml><A>1</xml>", '<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>'],
)
def test_bad_plaintext(xml: str) -> None:
    with pytest.raises(MessageError) as info:
        parse_message(xml)
    assert info.value.code == -40002


# --- dedup_key --------------------------------------------------------------------------


def test_messages_dedupe_on_msgid() -> None:
    assert dedup_key(parse_message(SAMPLES["text"])) == "msg:7390000000000000001"
    assert dedup_key({"MsgId": "12345678901234567890"}) == "msg:12345678901234567890"


def test_events_dedupe_on_a_digest_of_the_whole_message() -> None:
    key = dedup_key(parse_message(SAMPLES["external_contact_add"]))
    assert re.fullmatch(r"evt:[0-9a-f]{64}", key)
    assert dedup_key({"MsgId": "", "Event": "x"}).startswith("evt:")


def test_a_retry_gets_the_same_key_even_if_reformatted() -> None:
    original = SAMPLES["external_contact_add"]
    reformatted = original.replace("\n", "").replace("<![CDATA[sys]]>", "sys")
    assert reformatted != original
    assert dedup_key(parse_message(reformatted)) == dedup_key(parse_message(original))


def test_key_ignores_field_order() -> None:
    assert dedup_key({"a": "1", "b": "2"}) == dedup_key({"b": "2", "a": "1"})


def test_events_in_the_same_second_from_sys_stay_distinct() -> None:
    first = parse_message(SAMPLES["external_contact_add"])
    second = parse_message(SAMPLES["external_contact_add"].replace(EXT, EXT[:-1] + "B"))
    assert (first["FromUserName"], first["CreateTime"]) == (
        second["FromUserName"],
        second["CreateTime"],
    )
    assert dedup_key(first) != dedup_key(second)


def test_events_differing_only_in_agent_id_stay_distinct() -> None:
    one = parse_message(SAMPLES["event_unsubscribe"])
    other = parse_message(SAMPLES["event_unsubscribe"].replace(AGENT_ID, "1000003"))
    assert dedup_key(one) != dedup_key(other)


def test_kf_doorbells_with_different_tokens_stay_distinct() -> None:
    one = parse_message(SAMPLES["kf_msg_or_event"])
    other = parse_message(SAMPLES["kf_msg_or_event"].replace("ENCApHxn", "ENCBpHxn"))
    assert dedup_key(one) != dedup_key(other)
