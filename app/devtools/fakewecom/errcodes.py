"""The errcodes the fake answers with, and where each one comes from.

[table]  WeCom's global error table (doc 90313; mirrored verbatim in SDKs such as zsmhub/workweixin
         ``apis/api_error.go`` and WxJava ``WxCpErrorMsgEnum``) — the code exists with this meaning.
[kf]     the 微信客服 copy of the global table (95000–95003) or errmsgs seen in public kf code
         (95001 "send msg count limit", 95007 "invalid msg token", 95013 "conversation end",
         95018 "send msg session status invalid").
UNCONFIRMED  the code exists, but that this endpoint answers with it in this situation is a guess.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
BUSY: Final = -1  # [table] 系统繁忙
INVALID_CREDENTIAL: Final = 40001  # [table] gettoken with a wrong secret
INVALID_USERID_LIST_SIZE: Final = 40032  # [table] message/send: more than 1000 users
INVALID_MSGTYPE: Final = 40008  # [table]
INVALID_CORPID: Final = 40013  # [table]
INVALID_ACCESS_TOKEN: Final = 40014  # [table]
INVALID_CHARSET: Final = 40033  # [table] "不合法的请求字符，不能包含\uxxxx格式的字符"
INVALID_AGENTID: Final = 40056  # [table]
INVALID_PARAMETER: Final = 40058  # [table] 不合法的参数; every use in the fake is UNCONFIRMED
EMPTY_PARAMETER: Final = 40063  # [table] 参数为空 (a required field is missing)
INVALID_EXTERNAL_USERID: Final = 40096  # [table]
MISSING_ACCESS_TOKEN: Final = 41001  # [table]
MISSING_CORPID: Final = 41002  # [table]
MISSING_SECRET: Final = 41004  # [table]
MISSING_MEDIA_ID: Final = 41006  # [table]
MISSING_URL: Final = 41010  # [table]
MISSING_AGENTID: Final = 41011  # [table]
MISSING_TITLE: Final = 41016  # [table]
MISSING_DESCRIPTION: Final = 41033  # [table] textcard description
# [table] for customer-contact welcome codes (41049 missing, 41050 invalid/expired after 20 s).
# UNCONFIRMED: that kf/send_msg_on_event answers with these for a used/expired/unknown code.
MISSING_EVENT_CODE: Final = 41049
INVALID_EVENT_CODE: Final = 41050
ACCESS_TOKEN_EXPIRED: Final = 42001  # [table]
EMPTY_TEXT_CONTENT: Final = 44004  # [table] 文本消息content参数为空
CONTENT_TOO_LARGE: Final = 45002  # [table] text over 2048 bytes
TOO_MANY_ARTICLES: Final = 45008  # [table] news over 8 articles
RATE_LIMITED: Final = 45009  # [table]
CONCURRENCY_LIMITED: Final = 45033  # [table]
BAD_JSON: Final = 47001  # UNCONFIRMED for WeCom (Official Accounts use it for unparsable JSON)
API_FORBIDDEN: Final = 48002  # [table]
INVALID_CURSOR: Final = 50100  # [table] 分页查询的游标无效; UNCONFIRMED that sync_msg uses it
IP_NOT_ALLOWED: Final = 60020  # [table]
ALL_RECIPIENTS_INVALID: Final = 81013  # [table]
NO_RECIPIENTS: Final = 82001  # [table] 指定的成员/部门/标签全部为空
TOO_MANY_PARTIES: Final = 82002  # [table]
TOO_MANY_TAGS: Final = 82003  # [table]
AGENT_NOT_OF_TOKEN: Final = 301002  # [table] agentid is another app than the token's
INVALID_OPEN_KFID: Final = 95000  # [kf]
KF_SEND_COUNT_LIMIT: Final = 95001  # [kf]
KF_SEND_TIME_LIMIT: Final = 95002  # [kf]
INVALID_MSG_TOKEN: Final = 95007  # [kf] sync_msg with an unknown or expired callback Token
KF_SESSION_ENDED: Final = 95013  # [kf]
KF_SESSION_STATE_INVALID: Final = 95018  # [kf]

ERRMSG: Final[dict[int, str]] = {
    OK: "ok",
    BUSY: "system busy",
    INVALID_CREDENTIAL: "invalid credential",
    INVALID_USERID_LIST_SIZE: "invalid userid list size",
    INVALID_MSGTYPE: "invalid message type",
    INVALID_CORPID: "invalid corpid",
    INVALID_ACCESS_TOKEN: "invalid access_token",
    INVALID_CHARSET: (
        "invalid charset. please check your request, if include \\uxxxx will create fail!"
    ),
    INVALID_AGENTID: "invalid agentid",
    INVALID_PARAMETER: "invalid parameter",
    EMPTY_PARAMETER: "params is empty",
    INVALID_EXTERNAL_USERID: "invalid external userid",
    MISSING_ACCESS_TOKEN: "access_token missing",
    MISSING_CORPID: "corpid missing",
    MISSING_SECRET: "corpsecret missing",
    MISSING_MEDIA_ID: "media_id missing",
    MISSING_URL: "url missing",
    MISSING_AGENTID: "agentid missing",
    MISSING_TITLE: "title missing",
    MISSING_DESCRIPTION: "description missing",
    MISSING_EVENT_CODE: "code missing",
    INVALID_EVENT_CODE: "invalid code",
    ACCESS_TOKEN_EXPIRED: "access_token expired",
    EMPTY_TEXT_CONTENT: "empty content",
    CONTENT_TOO_LARGE: "content size out of limit",
    TOO_MANY_ARTICLES: "article size out of limit",
    RATE_LIMITED: "api freq out of limit",
    CONCURRENCY_LIMITED: "api concurrent out of limit",
    BAD_JSON: "data format error",
    API_FORBIDDEN: "api forbidden",
    INVALID_CURSOR: "invalid cursor",
    IP_NOT_ALLOWED: "not allow to access from your ip",
    ALL_RECIPIENTS_INVALID: "all of user & party & tag invalid",
    NO_RECIPIENTS: "touser & toparty & totag all empty",
    TOO_MANY_PARTIES: "invalid partyid list size",
    TOO_MANY_TAGS: "invalid tagid list size",
    AGENT_NOT_OF_TOKEN: "not allow to operate another agent with this accesstoken",
    INVALID_OPEN_KFID: "invalid open_kfid",
    KF_SEND_COUNT_LIMIT: "send msg count limit",
    KF_SEND_TIME_LIMIT: "send msg time limit",
    INVALID_MSG_TOKEN: "invalid msg token",
    KF_SESSION_ENDED: "conversation end",
    KF_SESSION_STATE_INVALID: "send msg session status invalid",
}


def errmsg(code: int, hint: str) -> str:
    """WeCom-style errmsg: text, a per-call hint and the caller's IP (clients must ignore it)."""
    text = ERRMSG.get(code, "fault injected")
    if code == OK:
        return text
    return (
        f"{text}, hint: [{hint}], from ip: 127.0.0.1, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
    )
