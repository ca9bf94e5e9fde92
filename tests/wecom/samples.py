"""Test data shared by the protocol tests and the Flask-layer tests.

* ``OFFICIAL_*``: the worked examples published by WeCom (doc path/90968 and the official sample
  code sbzhu/weworkapi_python ``callback/Sample.py``). Values are facts copied from there.
* ``SAMPLES``: one decrypted callback per message type and event type of the protocol reference
  §5.1-5.4 and §8.2, written for these tests (invented ids, the documented field names).
"""

from __future__ import annotations

from typing import NamedTuple


class OfficialVector(NamedTuple):
    token: str
    encoding_aes_key: str
    receive_id: str
    msg_signature: str
    timestamp: str
    nonce: str
    encrypted: str  # echostr (GET) or the Encrypt element (POST)
    plaintext: str
    body: bytes = b""  # the POST body, for POST vectors


_DOC_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # not canonical base64: ends in "C"
_DOC_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdC"
    "Upj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4X"
    "gpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+K"
    "qCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XX"
    "ZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHB"
    "ZZIs2pDBS8R07+qN+E7Q=="
)

#: doc 90968 "举例说明": the POST; the plaintext ends in 30 bytes of padding (breaks K=16 unpad).
OFFICIAL_DOC_POST = OfficialVector(
    token="QDG6eK",
    encoding_aes_key=_DOC_KEY,
    receive_id="wx5823bf96d3bd56c7",
    msg_signature="477715d11cdb4164915debcba66cb864d751f3e6",
    timestamp="1409659813",
    nonce="1372623149",
    encrypted=_DOC_ENCRYPT,
    plaintext=(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
        "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
        "<CreateTime>1409659813</CreateTime>\n"
        "<MsgType><![CDATA[text]]></MsgType>\n"
        "<Content><![CDATA[hello]]></Content>\n"
        "<MsgId>4561255354251345929</MsgId>\n"
        "<AgentID>218</AgentID>\n"
        "</xml>"
    ),
    body=(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
        f"<Encrypt><![CDATA[{_DOC_ENCRYPT}]]></Encrypt>\n"
        "<AgentID><![CDATA[218]]></AgentID>\n"
        "</xml>"
    ).encode(),
)

#: The URL-verification GET of the official samples, same Token/key/CorpID as the doc example.
OFFICIAL_DOC_GET = OfficialVector(
    token="QDG6eK",
    encoding_aes_key=_DOC_KEY,
    receive_id="wx5823bf96d3bd56c7",
    msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    timestamp="1409659589",
    nonce="263014780",
    encrypted="P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    plaintext="1616140317555161061",
)
#: The same GET's query string as it arrives (``+``, ``/`` and ``=`` percent-encoded).
OFFICIAL_DOC_GET_QUERY = (
    "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
    "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2B"
    "FZXvnaqQ%3D%3D"
)

_SAMPLE_PY_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
_SAMPLE_PY_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
_SAMPLE_PY_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAg"
    "GzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9"
    "U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qA"
    "RR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6a"
    "SDPOYuPDGOCI8jmnKiypE+"
)

#: sbzhu/weworkapi_python callback/Sample.py, example 1 (VerifyURL).
OFFICIAL_SAMPLE_GET = OfficialVector(
    token=_SAMPLE_PY_TOKEN,
    encoding_aes_key=_SAMPLE_PY_KEY,
    receive_id="ww1436e0e65a779aee",
    msg_signature="012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    timestamp="1476416373",
    nonce="47744683",
    encrypted="fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    plaintext="1288432023552776189",
)

#: sbzhu/weworkapi_python callback/Sample.py, example 2 (DecryptMsg): inner XML without CDATA.
OFFICIAL_SAMPLE_POST = OfficialVector(
    token=_SAMPLE_PY_TOKEN,
    encoding_aes_key=_SAMPLE_PY_KEY,
    receive_id="ww1436e0e65a779aee",
    msg_signature="0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    timestamp="1476422779",
    nonce="1597212914",
    encrypted=_SAMPLE_PY_ENCRYPT,
    plaintext=(
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    ),
    body=(
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
        f"<Encrypt><![CDATA[{_SAMPLE_PY_ENCRYPT}]]></Encrypt>\n"
        "<AgentID><![CDATA[1000002]]></AgentID>\n"
        "</xml>"
    ).encode(),
)

OFFICIAL_VECTORS = {
    "doc_post": OFFICIAL_DOC_POST,
    "doc_get": OFFICIAL_DOC_GET,
    "sample_get": OFFICIAL_SAMPLE_GET,
    "sample_post": OFFICIAL_SAMPLE_POST,
}

# --- Decrypted callbacks ------------------------------------------------------------------

#: Test settings for a self-built app (a valid Token and a canonical 43-character key).
CORP_ID = "ww7c1f0e5a3b2d4e6f"
AGENT_ID = "1000002"
TOKEN = "Tk7Q2mZ9xLp4Rw8V"
ENCODING_AES_KEY = "lUvWjfAckK2gmNWx3eU49me7UaydJObB09XTJFTkNFA"


def _xml(sender: str | None, create_time: int, msg_type: str, body: str) -> str:
    head = f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n"
    if sender is not None:
        head += f"<FromUserName><![CDATA[{sender}]]></FromUserName>\n"
    head += f"<CreateTime>{create_time}</CreateTime>\n<MsgType><![CDATA[{msg_type}]]></MsgType>\n"
    return f"<xml>\n{head}{body.strip()}\n</xml>"


def _event(name: str, body: str = "", *, sender: str = "LiSi", at: int = 1718000100) -> str:
    return _xml(sender, at, "event", f"<Event><![CDATA[{name}]]></Event>\n{body.strip()}")


_AGENT = f"<AgentID>{AGENT_ID}</AgentID>"

SAMPLES: dict[str, str] = {
    # §5.1 ordinary messages
    "text": _xml(
        "LiSi",
        1718000001,
        "text",
        f"""
<Content><![CDATA[你好，请问 <报销> & "差旅" 流程？]]></Content>
<MsgId>7390000000000000001</MsgId>
{_AGENT}""",
    ),
    "image": _xml(
        "LiSi",
        1718000002,
        "image",
        f"""
<PicUrl><![CDATA[https://wework.qpic.cn/wwpic/example/0]]></PicUrl>
<MediaId><![CDATA[2-G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0]]></MediaId>
<MsgId>7390000000000000002</MsgId>
{_AGENT}""",
    ),
    "voice": _xml(
        "LiSi",
        1718000003,
        "voice",
        f"""
<MediaId><![CDATA[1B-voice-media-id]]></MediaId>
<Format><![CDATA[amr]]></Format>
<MsgId>7390000000000000003</MsgId>
{_AGENT}""",
    ),
    "video": _xml(
        "LiSi",
        1718000004,
        "video",
        f"""
<MediaId><![CDATA[1C-video-media-id]]></MediaId>
<ThumbMediaId><![CDATA[1D-thumb-media-id]]></ThumbMediaId>
<MsgId>7390000000000000004</MsgId>
{_AGENT}""",
    ),
    "location": _xml(
        "LiSi",
        1718000005,
        "location",
        f"""
<Location_X>23.134521</Location_X>
<Location_Y>113.358803</Location_Y>
<Scale>15</Scale>
<Label><![CDATA[广州市天河区]]></Label>
<MsgId>7390000000000000005</MsgId>
{_AGENT}
<AppType><![CDATA[wxwork]]></AppType>""",
    ),
    "link": _xml(
        "LiSi",
        1718000006,
        "link",
        f"""
<Title><![CDATA[季度报告]]></Title>
<Description><![CDATA[第二季度]]></Description>
<Url><![CDATA[https://example.com/report?q=2&lang=zh]]></Url>
<PicUrl><![CDATA[https://example.com/cover.png]]></PicUrl>
<MsgId>7390000000000000006</MsgId>
{_AGENT}""",
    ),
    # §5.2 events
    "event_subscribe": _event("subscribe", _AGENT),
    "event_unsubscribe": _event("unsubscribe", _AGENT),
    "event_enter_agent": _event("enter_agent", f"<EventKey><![CDATA[]]></EventKey>\n{_AGENT}"),
    "event_location": _event(
        "LOCATION",
        f"""
<Latitude>23.104105</Latitude>
<Longitude>113.320107</Longitude>
<Precision>65.000000</Precision>
{_AGENT}
<AppType><![CDATA[wxwork]]></AppType>""",
    ),
    "event_batch_job_result": _event(
        "batch_job_result",
        """
<BatchJob>
<JobId><![CDATA[S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4]]></JobId>
<JobType><![CDATA[sync_user]]></JobType>
<ErrCode>0</ErrCode>
<ErrMsg><![CDATA[ok]]></ErrMsg>
</BatchJob>""",
        sender="sys",
    ),
    "event_click": _event("click", f"<EventKey><![CDATA[MENU_REPORT]]></EventKey>\n{_AGENT}"),
    "event_view": _event(
        "view", f"<EventKey><![CDATA[https://example.com/menu?a=1&b=2]]></EventKey>\n{_AGENT}"
    ),
    "event_view_miniprogram": _event(
        "view_miniprogram", f"<EventKey><![CDATA[pages/index/index]]></EventKey>\n{_AGENT}"
    ),
    "event_scancode_push": _event(
        "scancode_push",
        f"""
<EventKey><![CDATA[SCAN_1]]></EventKey>
<ScanCodeInfo>
<ScanType><![CDATA[qrcode]]></ScanType>
<ScanResult><![CDATA[https://example.com/qr/42]]></ScanResult>
</ScanCodeInfo>
{_AGENT}""",
    ),
    "event_scancode_waitmsg": _event(
        "scancode_waitmsg",
        f"""
<EventKey><![CDATA[SCAN_2]]></EventKey>
<ScanCodeInfo>
<ScanType><![CDATA[barcode]]></ScanType>
<ScanResult><![CDATA[EAN_13,6901234567892]]></ScanResult>
</ScanCodeInfo>
{_AGENT}""",
    ),
    # one picture: PicList.item must still be a list
    "event_pic_sysphoto": _event(
        "pic_sysphoto",
        f"""
<EventKey><![CDATA[PHOTO]]></EventKey>
<SendPicsInfo>
<Count>1</Count>
<PicList>
<item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item>
</PicList>
</SendPicsInfo>
{_AGENT}""",
    ),
    "event_pic_photo_or_album": _event(
        "pic_photo_or_album",
        f"""
<EventKey><![CDATA[ALBUM]]></EventKey>
<SendPicsInfo>
<Count>2</Count>
<PicList>
<item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item>
<item><PicMd5Sum><![CDATA[68d6c1a8f9e0a4bd7c5b2b65c5f4c7d1]]></PicMd5Sum></item>
</PicList>
</SendPicsInfo>
{_AGENT}""",
    ),
    # no picture: an empty PicList still gives an (empty) item list
    "event_pic_weixin": _event(
        "pic_weixin",
        f"""
<EventKey><![CDATA[WEIXIN]]></EventKey>
<SendPicsInfo>
<Count>0</Count>
<PicList></PicList>
</SendPicsInfo>
{_AGENT}""",
    ),
    "event_location_select": _event(
        "location_select",
        f"""
<EventKey><![CDATA[WHERE]]></EventKey>
<SendLocationInfo>
<Location_X><![CDATA[23]]></Location_X>
<Location_Y><![CDATA[113]]></Location_Y>
<Scale><![CDATA[15]]></Scale>
<Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label>
<Poiname><![CDATA[]]></Poiname>
</SendLocationInfo>
{_AGENT}
<AppType><![CDATA[wxwork]]></AppType>""",
    ),
    "event_open_approval_change": _event(
        "open_approval_change",
        f"""
{_AGENT}
<ApprovalInfo>
<ThirdNo><![CDATA[PAY-20240610-0001]]></ThirdNo>
<OpenSpName><![CDATA[付款]]></OpenSpName>
<OpenTemplateId><![CDATA[tpl-pay-1]]></OpenTemplateId>
<OpenSpStatus>1</OpenSpStatus>
<ApplyTime>1718000000</ApplyTime>
<ApplyUserName><![CDATA[王五]]></ApplyUserName>
<ApplyUserId><![CDATA[WangWu]]></ApplyUserId>
<ApplyUserParty><![CDATA[财务部]]></ApplyUserParty>
<ApplyUserImage><![CDATA[https://example.com/a.png]]></ApplyUserImage>
<ApprovalNodes>
<ApprovalNode>
<NodeStatus>1</NodeStatus>
<NodeAttr>1</NodeAttr>
<NodeType>1</NodeType>
<Items>
<Item>
<ItemName><![CDATA[赵六]]></ItemName>
<ItemUserId><![CDATA[ZhaoLiu]]></ItemUserId>
<ItemImage><![CDATA[https://example.com/z.png]]></ItemImage>
<ItemStatus>1</ItemStatus>
<ItemSpeech><![CDATA[]]></ItemSpeech>
<ItemOpTime>0</ItemOpTime>
</Item>
</Items>
</ApprovalNode>
</ApprovalNodes>
<NotifyNodes>
<NotifyNode>
<ItemName><![CDATA[孙七]]></ItemName>
<ItemUserId><![CDATA[SunQi]]></ItemUserId>
<ItemImage><![CDATA[https://example.com/s.png]]></ItemImage>
</NotifyNode>
</NotifyNodes>
<approverstep>0</approverstep>
</ApprovalInfo>""",
        sender="sys",
    ),
    "event_sys_approval_change": _event(
        "sys_approval_change",
        f"""
{_AGENT}
<ApprovalInfo>
<SpNo>202406100001</SpNo>
<SpName><![CDATA[报销]]></SpName>
<SpStatus>1</SpStatus>
<TemplateId><![CDATA[C4NyExampleTemplateId]]></TemplateId>
<ApplyTime>1718000000</ApplyTime>
<Applyer>
<UserId><![CDATA[WangWu]]></UserId>
<Party><![CDATA[2]]></Party>
</Applyer>
<SpRecord>
<SpStatus>2</SpStatus>
<ApproverAttr>1</ApproverAttr>
<Details>
<Approver><UserId><![CDATA[ZhaoLiu]]></UserId></Approver>
<Speech><![CDATA[同意]]></Speech>
<SpStatus>2</SpStatus>
<SpTime>1718000050</SpTime>
</Details>
</SpRecord>
<SpRecord>
<SpStatus>1</SpStatus>
<ApproverAttr>2</ApproverAttr>
<Details>
<Approver><UserId><![CDATA[SunQi]]></UserId></Approver>
<Speech><![CDATA[]]></Speech>
<SpStatus>1</SpStatus>
<SpTime>0</SpTime>
</Details>
<Details>
<Approver><UserId><![CDATA[ZhouBa]]></UserId></Approver>
<Speech><![CDATA[]]></Speech>
<SpStatus>1</SpStatus>
<SpTime>0</SpTime>
</Details>
</SpRecord>
<Notifyer><UserId><![CDATA[WuJiu]]></UserId></Notifyer>
<Comments>
<CommentUserInfo><UserId><![CDATA[ZhaoLiu]]></UserId></CommentUserInfo>
<CommentTime>1718000060</CommentTime>
<CommentContent><![CDATA[请补发票]]></CommentContent>
<CommentId><![CDATA[6830000000000000001]]></CommentId>
</Comments>
<StatuChangeEvent>2</StatuChangeEvent>
</ApprovalInfo>""",
        sender="sys",
    ),
    "event_share_agent_change": _event("share_agent_change", _AGENT, sender="sys"),
    "event_share_chain_change": _event("share_chain_change", _AGENT, sender="sys"),
    "event_template_card_event": _event(
        "template_card_event",
        f"""
<EventKey><![CDATA[submit]]></EventKey>
<TaskId><![CDATA[task-20240610-01]]></TaskId>
<CardType><![CDATA[multiple_interaction]]></CardType>
<ResponseCode><![CDATA[rc-Abc123]]></ResponseCode>
{_AGENT}
<SelectedItems>
<SelectedItem>
<QuestionKey><![CDATA[city]]></QuestionKey>
<OptionIds>
<OptionId><![CDATA[gz]]></OptionId>
</OptionIds>
</SelectedItem>
<SelectedItem>
<QuestionKey><![CDATA[days]]></QuestionKey>
<OptionIds>
<OptionId><![CDATA[mon]]></OptionId>
<OptionId><![CDATA[tue]]></OptionId>
</OptionIds>
</SelectedItem>
</SelectedItems>""",
    ),
    # a vote card with a single question: SelectedItem must still be a list
    "event_template_card_event_single": _event(
        "template_card_event",
        f"""
<EventKey><![CDATA[vote]]></EventKey>
<TaskId><![CDATA[task-20240610-02]]></TaskId>
<CardType><![CDATA[vote_interaction]]></CardType>
<ResponseCode><![CDATA[rc-Def456]]></ResponseCode>
{_AGENT}
<SelectedItems>
<SelectedItem>
<QuestionKey><![CDATA[lunch]]></QuestionKey>
<OptionIds>
<OptionId><![CDATA[noodles]]></OptionId>
</OptionIds>
</SelectedItem>
</SelectedItems>""",
    ),
    "event_template_card_menu_event": _event(
        "template_card_menu_event",
        f"""
<EventKey><![CDATA[mute]]></EventKey>
<TaskId><![CDATA[task-20240610-03]]></TaskId>
<CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[rc-Ghi789]]></ResponseCode>
{_AGENT}""",
    ),
    "event_inactive_alert": _event(
        "inactive_alert", f"<EffectTime>1720600000</EffectTime>\n{_AGENT}", sender="sys"
    ),
    "event_close_inactive_agent": _event("close_inactive_agent", _AGENT, sender="sys"),
    "event_reopen_inactive_agent": _event("reopen_inactive_agent", _AGENT, sender="sys"),
    "event_low_active_alert": _event(
        "low_active_alert", f"<EffectTime>1720600000</EffectTime>\n{_AGENT}", sender="sys"
    ),
    "event_low_active": _event("low_active", _AGENT, sender="sys"),
    "event_active_restored": _event("active_restored", _AGENT, sender="sys"),
    "event_kf_account_auth_change": _event(
        "kf_account_auth_change",
        """
<AuthAddOpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw]]></AuthAddOpenKfId>
<AuthAddOpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTx]]></AuthAddOpenKfId>
<AuthDelOpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTy]]></AuthDelOpenKfId>""",
        sender="sys",
    ),
    # a single addition and no removal: both fields are still lists
    "event_kf_account_auth_change_single": _event(
        "kf_account_auth_change",
        "<AuthAddOpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTz]]></AuthAddOpenKfId>",
        sender="sys",
    ),
    # §5.2 "others" (field lists from SDKs; meeting-room, living and acquisition payloads beyond
    # what is shown here are not covered by the protocol reference)
    "event_taskcard_click": _event(
        "taskcard_click",
        f"<EventKey><![CDATA[agree]]></EventKey>\n<TaskId><![CDATA[tc-1]]></TaskId>\n{_AGENT}",
    ),
    "event_modify_calendar": _event(
        "modify_calendar", "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>"
    ),
    "event_delete_calendar": _event(
        "delete_calendar", "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>"
    ),
    "event_add_schedule": _event(
        "add_schedule",
        "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>\n"
        "<ScheduleId><![CDATA[17c7d2bd9f20d652840f72f59e796AAA]]></ScheduleId>",
    ),
    "event_modify_schedule": _event(
        "modify_schedule",
        "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>\n"
        "<ScheduleId><![CDATA[17c7d2bd9f20d652840f72f59e796AAA]]></ScheduleId>",
    ),
    "event_delete_schedule": _event(
        "delete_schedule",
        "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>\n"
        "<ScheduleId><![CDATA[17c7d2bd9f20d652840f72f59e796AAA]]></ScheduleId>",
    ),
    "event_respond_schedule": _event(
        "respond_schedule",
        "<CalId><![CDATA[wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA]]></CalId>\n"
        "<ScheduleId><![CDATA[17c7d2bd9f20d652840f72f59e796AAA]]></ScheduleId>",
    ),
    "event_book_meeting_room": _event("book_meeting_room", "<MeetingRoomId>7</MeetingRoomId>"),
    "event_cancel_meeting_room": _event("cancel_meeting_room", "<MeetingRoomId>7</MeetingRoomId>"),
    "event_living_status_change": _event("living_status_change", _AGENT),
    "event_msgaudit_notify": _event("msgaudit_notify", _AGENT, sender="sys"),
    "event_customer_acquisition": _event(
        "customer_acquisition",
        "<ChangeType><![CDATA[balance_low]]></ChangeType>",
        sender="sys",
    ),
    "event_security": _event(
        "security", "<ChangeType><![CDATA[change_domain_ip]]></ChangeType>", sender="sys"
    ),
    # §5.3 change_contact
    "contact_create_user": _event(
        "change_contact",
        """
<ChangeType><![CDATA[create_user]]></ChangeType>
<UserID><![CDATA[ZhangSan]]></UserID>
<Name><![CDATA[张三]]></Name>
<Department><![CDATA[1,2,3]]></Department>
<MainDepartment>1</MainDepartment>
<IsLeaderInDept><![CDATA[1,0,0]]></IsLeaderInDept>
<DirectLeader><![CDATA[LiSi,WangWu]]></DirectLeader>
<Position><![CDATA[产品经理]]></Position>
<Mobile>13800000000</Mobile>
<Gender>1</Gender>
<Email><![CDATA[zhangsan@example.com]]></Email>
<BizMail><![CDATA[zhangsan@corp.example.com]]></BizMail>
<Status>1</Status>
<Avatar><![CDATA[https://example.com/avatar.png]]></Avatar>
<Alias><![CDATA[zhangsan]]></Alias>
<Telephone><![CDATA[020-12345678]]></Telephone>
<Address><![CDATA[广州市]]></Address>
<ExtAttr>
<Item>
<Name><![CDATA[爱好]]></Name>
<Type>0</Type>
<Text><Value><![CDATA[旅游]]></Value></Text>
</Item>
<Item>
<Name><![CDATA[主页]]></Name>
<Type>1</Type>
<Web><Title><![CDATA[个人主页]]></Title><Url><![CDATA[https://example.com/zs]]></Url></Web>
</Item>
</ExtAttr>""",
        sender="sys",
    ),
    # a single ExtAttr item: Item must still be a list
    "contact_update_user": _event(
        "change_contact",
        """
<ChangeType><![CDATA[update_user]]></ChangeType>
<UserID><![CDATA[ZhangSan]]></UserID>
<NewUserID><![CDATA[ZhangSan2]]></NewUserID>
<Department><![CDATA[1,4]]></Department>
<ExtAttr>
<Item>
<Name><![CDATA[爱好]]></Name>
<Type>0</Type>
<Text><Value><![CDATA[]]></Value></Text>
</Item>
</ExtAttr>""",
        sender="sys",
    ),
    "contact_delete_user": _event(
        "change_contact",
        "<ChangeType><![CDATA[delete_user]]></ChangeType>\n<UserID><![CDATA[ZhangSan2]]></UserID>",
        sender="sys",
    ),
    "contact_create_party": _event(
        "change_contact",
        """
<ChangeType><![CDATA[create_party]]></ChangeType>
<Id>4</Id>
<Name><![CDATA[研发部]]></Name>
<ParentId><![CDATA[1]]></ParentId>
<Order>100000000</Order>""",
        sender="sys",
    ),
    "contact_update_party": _event(
        "change_contact",
        """
<ChangeType><![CDATA[update_party]]></ChangeType>
<Id>4</Id>
<Name><![CDATA[研发中心]]></Name>
<ParentId><![CDATA[1]]></ParentId>""",
        sender="sys",
    ),
    "contact_delete_party": _event(
        "change_contact",
        "<ChangeType><![CDATA[delete_party]]></ChangeType>\n<Id>4</Id>",
        sender="sys",
    ),
    "contact_update_tag": _event(
        "change_contact",
        """
<ChangeType><![CDATA[update_tag]]></ChangeType>
<TagId>12</TagId>
<AddUserItems><![CDATA[ZhangSan,LiSi]]></AddUserItems>
<DelUserItems><![CDATA[WangWu]]></DelUserItems>
<AddPartyItems><![CDATA[1,4]]></AddPartyItems>
<DelPartyItems><![CDATA[]]></DelPartyItems>""",
        sender="sys",
    ),
    # §5.4 customer contact
    "external_contact_add": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[add_external_contact]]></ChangeType>
<UserID><![CDATA[LiSi]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></ExternalUserID>
<State><![CDATA[expo-2024]]></State>
<WelcomeCode><![CDATA[WELCOMECODE-1]]></WelcomeCode>""",
        sender="sys",
    ),
    "external_contact_edit": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[edit_external_contact]]></ChangeType>
<UserID><![CDATA[LiSi]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></ExternalUserID>""",
        sender="sys",
    ),
    "external_contact_add_half": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[add_half_external_contact]]></ChangeType>
<UserID><![CDATA[LiSi]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNB]]></ExternalUserID>
<State><![CDATA[]]></State>
<WelcomeCode><![CDATA[WELCOMECODE-2]]></WelcomeCode>""",
        sender="sys",
    ),
    "external_contact_del": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[del_external_contact]]></ChangeType>
<UserID><![CDATA[LiSi]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></ExternalUserID>
<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>""",
        sender="sys",
    ),
    "external_contact_del_follow_user": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[del_follow_user]]></ChangeType>
<UserID><![CDATA[LiSi]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></ExternalUserID>""",
        sender="sys",
    ),
    "external_contact_transfer_fail": _event(
        "change_external_contact",
        """
<ChangeType><![CDATA[transfer_fail]]></ChangeType>
<UserID><![CDATA[WangWu]]></UserID>
<ExternalUserID><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></ExternalUserID>
<FailReason><![CDATA[customer_refused]]></FailReason>""",
        sender="sys",
    ),
    "external_chat_create": _event(
        "change_external_chat",
        """
<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>
<ChangeType><![CDATA[create]]></ChangeType>""",
        sender="sys",
    ),
    # one member joined: MemChangeList.Item must still be a list
    "external_chat_update_add_member": _event(
        "change_external_chat",
        """
<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>
<ChangeType><![CDATA[update]]></ChangeType>
<UpdateDetail><![CDATA[add_member]]></UpdateDetail>
<JoinScene>1</JoinScene>
<MemChangeCnt>1</MemChangeCnt>
<MemChangeList>
<Item><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></Item>
</MemChangeList>
<LastMemVer><![CDATA[9c3f97c2ada667dfb5f6d03308d963e1]]></LastMemVer>
<CurMemVer><![CDATA[71217227bbd112ecfe3a49c482195cb4]]></CurMemVer>""",
        sender="sys",
    ),
    "external_chat_update_del_member": _event(
        "change_external_chat",
        """
<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>
<ChangeType><![CDATA[update]]></ChangeType>
<UpdateDetail><![CDATA[del_member]]></UpdateDetail>
<QuitScene>0</QuitScene>
<MemChangeCnt>2</MemChangeCnt>
<MemChangeList>
<Item><![CDATA[wmEAlECwAAHrbWYDetiu3Af13xlYDDNA]]></Item>
<Item><![CDATA[LiSi]]></Item>
</MemChangeList>
<LastMemVer><![CDATA[71217227bbd112ecfe3a49c482195cb4]]></LastMemVer>
<CurMemVer><![CDATA[a1f2c3d4e5b6a7980112233445566778]]></CurMemVer>""",
        sender="sys",
    ),
    "external_chat_dismiss": _event(
        "change_external_chat",
        """
<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>
<ChangeType><![CDATA[dismiss]]></ChangeType>""",
        sender="sys",
    ),
    "external_tag_create": _event(
        "change_external_tag",
        """
<Id><![CDATA[etm7wjCgAA5ASQ3FaKVL5xLa0ANv1xxx]]></Id>
<TagType><![CDATA[tag]]></TagType>
<ChangeType><![CDATA[create]]></ChangeType>
<StrategyId>1</StrategyId>""",
        sender="sys",
    ),
    "external_tag_update": _event(
        "change_external_tag",
        """
<Id><![CDATA[etm7wjCgAA5ASQ3FaKVL5xLa0ANv1xxx]]></Id>
<TagType><![CDATA[tag_group]]></TagType>
<ChangeType><![CDATA[update]]></ChangeType>""",
        sender="sys",
    ),
    "external_tag_delete": _event(
        "change_external_tag",
        """
<Id><![CDATA[etm7wjCgAA5ASQ3FaKVL5xLa0ANv1xxx]]></Id>
<TagType><![CDATA[tag]]></TagType>
<ChangeType><![CDATA[delete]]></ChangeType>""",
        sender="sys",
    ),
    "external_tag_shuffle": _event(
        "change_external_tag",
        """
<Id><![CDATA[etm7wjCgAA5ASQ3FaKVL5xLa0ANv1xxx]]></Id>
<ChangeType><![CDATA[shuffle]]></ChangeType>""",
        sender="sys",
    ),
    # §8.2 the 微信客服 doorbell: no FromUserName, no MsgId
    "kf_msg_or_event": _xml(
        None,
        1718000200,
        "event",
        """
<Event><![CDATA[kf_msg_or_event]]></Event>
<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>
<OpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw]]></OpenKfId>""",
    ),
}
