"""The fake WeCom server itself, exercised over real HTTP with ``requests``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.devtools.fakewecom import FakeControl, FakeWeCom
from tests.api.conftest import AGENT_ID, APP_SECRET, CORP_ID, KF_A, KF_B, KF_SECRET
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


class Api:
    """Raw calls to the fake, the way WeCom would be called."""

    def __init__(self, fake: FakeWeCom, http: requests.Session) -> None:
        self.fake = fake
        self.http = http

    def token(self, secret: str = APP_SECRET) -> str:
        data = self.get("gettoken", corpid=CORP_ID, corpsecret=secret)
        assert data["errcode"] == 0, data
        return str(data["access_token"])

    def get(self, endpoint: str, **params: str) -> dict[str, Any]:
        resp = self.http.get(self.fake.base_url + endpoint, params=params, timeout=5)
        assert resp.status_code == 200
        return dict(resp.json())

    def post(
        self,
        endpoint: str,
        token: str | None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        timeout: float = 5,
    ) -> dict[str, Any]:
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        params = {"access_token": token} if token is not None else {}
        resp = self.http.post(
            self.fake.base_url + endpoint,
            params=params,
            data=data,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=timeout,
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


@pytest.fixture
def api(fake: FakeWeCom, http: requests.Session) -> Api:
    return Api(fake, http)


def text_msg(content: str = "你好", **extra: Any) -> dict[str, Any]:
    return {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": content},
        **extra,
    }


# -- gettoken ----------------------------------------------------------------------------------
def test_gettoken_answers_a_token_with_expires_in_and_counts_calls(
    api: Api, fake: FakeWeCom
) -> None:
    data = api.get("gettoken", corpid=CORP_ID, corpsecret=APP_SECRET)
    assert data["errcode"] == 0
    assert data["errmsg"] == "ok"
    assert data["expires_in"] == 7200
    assert 0 < len(data["access_token"]) <= 512
    api.get("gettoken", corpid=CORP_ID, corpsecret=KF_SECRET)
    assert fake.gettoken_calls == 2
    assert fake.state.stats()["tokens_issued"] == 2


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"corpsecret": APP_SECRET}, 41002),
        ({"corpid": "wwsomeoneelse", "corpsecret": APP_SECRET}, 40013),
        ({"corpid": CORP_ID}, 41004),
        ({"corpid": CORP_ID, "corpsecret": "wrong"}, 40001),
    ],
)
def test_gettoken_errors(api: Api, fake: FakeWeCom, params: dict[str, str], errcode: int) -> None:
    data = api.get("gettoken", **params)
    assert data["errcode"] == errcode
    assert "access_token" not in data
    assert f"e={errcode}" in data["errmsg"]  # WeCom-style errmsg with a hint and a link
    assert fake.gettoken_calls == 1


def test_expires_in_is_configurable(api: Api, fake: FakeWeCom) -> None:
    FakeControl(fake.url).configure(expires_in=60)
    assert api.get("gettoken", corpid=CORP_ID, corpsecret=APP_SECRET)["expires_in"] == 60


def test_the_secret_is_not_kept_in_the_request_log(api: Api, fake: FakeWeCom) -> None:
    api.token()
    logged = json.dumps(fake.requests("gettoken"))
    assert APP_SECRET not in logged


# -- message/send ------------------------------------------------------------------------------
def test_message_send_accepts_and_records(api: Api, fake: FakeWeCom) -> None:
    data = api.post("message/send", api.token(), text_msg("中文 ✓"))
    assert data["errcode"] == 0
    assert data["errmsg"] == "ok"
    assert data["invaliduser"] == ""
    assert data["msgid"]
    (sent,) = fake.sent("message/send")
    assert sent["msgid"] == data["msgid"]
    assert sent["body"]["text"]["content"] == "中文 ✓"
    assert sent["agentid"] == AGENT_ID


def test_message_send_token_checks(api: Api, fake: FakeWeCom) -> None:
    assert api.post("message/send", None, text_msg())["errcode"] == 41001
    assert api.post("message/send", "not-a-token", text_msg())["errcode"] == 40014
    token = api.token()
    assert FakeControl(fake.url).expire_tokens(token) == 1
    assert api.post("message/send", token, text_msg())["errcode"] == 42001
    assert FakeControl(fake.url).revoke_tokens(token) == 1
    assert api.post("message/send", token, text_msg())["errcode"] == 40014
    assert fake.sent() == []


def test_tokens_expire_with_the_clock(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    fake.advance(7199)
    assert api.post("message/send", token, text_msg())["errcode"] == 0
    fake.advance(2)
    assert api.post("message/send", token, text_msg())["errcode"] == 42001


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({"agentid": None}, 41011),
        ({"agentid": 999}, 40056),
        ({"agentid": "abc"}, 40056),
        ({"touser": "", "toparty": "", "totag": ""}, 82001),
        ({"touser": "|".join(f"u{i}" for i in range(1001))}, 40032),
        ({"msgtype": "sticker"}, 40008),
        ({"msgtype": None}, 40008),
        ({"text": {}}, 44004),
        ({"text": None}, 44004),
        ({"text": {"content": "你" * 683}}, 45002),  # 2049 bytes
        ({"msgtype": "image", "image": {}}, 41006),
        ({"msgtype": "textcard", "textcard": {"title": "t", "url": "https://x"}}, 41033),
        ({"msgtype": "news", "news": {"articles": [{"title": "a"}] * 9}}, 45008),
        ({"msgtype": "news", "news": {"articles": []}}, 40063),
        ({"msgtype": "template_card", "template_card": {}}, 40063),
    ],
)
def test_message_send_validation(
    api: Api, fake: FakeWeCom, change: dict[str, Any], errcode: int
) -> None:
    body = text_msg()
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    assert api.post("message/send", api.token(), body)["errcode"] == errcode
    assert fake.sent() == []


def test_2048_bytes_of_text_are_accepted(api: Api) -> None:
    body = text_msg("你" * 682 + "ab")  # exactly 2048 bytes
    assert api.post("message/send", api.token(), body)["errcode"] == 0


def test_agentid_of_another_app_is_refused(api: Api, fake: FakeWeCom) -> None:
    fake.add_app("second-secret", agent_id=1000003)
    body = text_msg(agentid=1000003)
    assert api.post("message/send", api.token(), body)["errcode"] == 301002


def test_non_ascii_escapes_and_bad_encodings_are_refused(api: Api) -> None:
    token = api.token()
    escaped = json.dumps(text_msg("你好")).encode()  # ensure_ascii=True: \u4f60\u597d
    assert b"\\u4f60" in escaped
    assert api.post("message/send", token, raw=escaped)["errcode"] == 40033
    latin1 = json.dumps(text_msg("café"), ensure_ascii=False).encode("latin-1")
    assert api.post("message/send", token, raw=latin1)["errcode"] == 40033
    assert api.post("message/send", token, raw=b"{not json")["errcode"] == 47001
    # An escaped backslash before "u" is not an escape, and ASCII escapes are harmless.
    fine = json.dumps(text_msg("a\\u4f60b\x01"), ensure_ascii=False).encode()
    assert api.post("message/send", token, raw=fine)["errcode"] == 0


@pytest.mark.parametrize(
    ("msgtype", "payload"),
    [
        ("markdown", {"content": "**hi**"}),
        ("image", {"media_id": "MEDIA"}),
        ("voice", {"media_id": "MEDIA"}),
        ("video", {"media_id": "MEDIA", "title": "t"}),
        ("file", {"media_id": "MEDIA"}),
        ("textcard", {"title": "t", "description": "d", "url": "https://example.com"}),
        ("news", {"articles": [{"title": "t", "url": "https://example.com"}]}),
        ("mpnews", {"articles": [{"title": "t", "thumb_media_id": "M", "content": "c"}]}),
        ("template_card", {"card_type": "text_notice", "main_title": {"title": "t"}}),
        ("miniprogram_notice", {"appid": "wx123", "title": "t"}),
    ],
)
def test_message_send_msgtypes(api: Api, msgtype: str, payload: dict[str, Any]) -> None:
    body = {"touser": "u1", "agentid": AGENT_ID, "msgtype": msgtype, msgtype: payload}
    data = api.post("message/send", api.token(), body)
    assert data["errcode"] == 0, data
    assert ("response_code" in data) == (msgtype == "template_card")


def test_known_users_give_invaliduser_and_81013() -> None:
    with (
        FakeWeCom(corp_id=CORP_ID, secret=APP_SECRET, known_users=["ZhangSan"]) as fake,
        requests.Session() as http,
    ):
        api = Api(fake, http)
        token = api.token()
        data = api.post("message/send", token, text_msg(touser="zhangsan|LiSi"))
        assert data["errcode"] == 0
        assert data["invaliduser"] == "lisi"
        assert api.post("message/send", token, text_msg(touser="lisi"))["errcode"] == 81013
        assert api.post("message/send", token, text_msg(touser="@all"))["errcode"] == 0


# -- kf/account/list ---------------------------------------------------------------------------
def test_kf_account_list(api: Api, fake: FakeWeCom) -> None:
    data = api.post("kf/account/list", api.token(KF_SECRET), {"offset": 0, "limit": 100})
    assert data["errcode"] == 0
    assert [a["open_kfid"] for a in data["account_list"]] == [KF_A, KF_B]
    assert {"name", "avatar", "manage_privilege"} <= set(data["account_list"][0])
    page = api.post("kf/account/list", api.token(KF_SECRET), {"offset": 1, "limit": 1})
    assert [a["open_kfid"] for a in page["account_list"]] == [KF_B]


def test_kf_needs_permission(api: Api, fake: FakeWeCom) -> None:
    fake.add_app("no-kf-secret", agent_id=1000009, kf=False)
    token = api.token("no-kf-secret")
    assert api.post("kf/account/list", token, {})["errcode"] == 48002


# -- kf/sync_msg -------------------------------------------------------------------------------
def test_sync_msg_pages_with_cursor_and_has_more(api: Api, fake: FakeWeCom) -> None:
    msgs = [{"external_userid": "wmU1", "text": f"m{i}"} for i in range(5)]
    enq = FakeControl(fake.url).enqueue_kf(open_kfid=KF_A, messages=msgs)
    assert len(enq["msgids"]) == 5
    token = api.token(KF_SECRET)
    seen: list[str] = []
    cursor = None
    pages = 0
    for _ in range(10):
        body: dict[str, Any] = {"token": enq["token"], "limit": 2, "open_kfid": KF_A}
        if cursor:
            body["cursor"] = cursor
        page = api.post("kf/sync_msg", token, body)
        assert page["errcode"] == 0
        pages += 1
        seen += [m["msgid"] for m in page["msg_list"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert pages == 3
    assert seen == enq["msgids"]
    item = api.post("kf/sync_msg", token, {"token": enq["token"]})["msg_list"][0]
    assert item == {
        "msgid": enq["msgids"][0],
        "open_kfid": KF_A,
        "external_userid": "wmU1",
        "send_time": item["send_time"],
        "origin": 3,
        "msgtype": "text",
        "text": {"content": "m0"},
    }
    # Nothing new after the last cursor.
    tail = api.post("kf/sync_msg", token, {"token": enq["token"], "cursor": cursor})
    assert (tail["msg_list"], tail["has_more"]) == ([], 0)


def test_sync_msg_filters_by_account_and_keeps_three_days(api: Api, fake: FakeWeCom) -> None:
    control = FakeControl(fake.url)
    control.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "old"}])
    fake.advance(3 * 86400 + 10)
    enq = control.enqueue_kf(open_kfid=KF_B, messages=[{"external_userid": "wm2", "text": "b"}])
    token = api.token(KF_SECRET)
    only_b = api.post("kf/sync_msg", token, {"token": enq["token"], "open_kfid": KF_B})
    assert [m["text"]["content"] for m in only_b["msg_list"]] == ["b"]
    everything = api.post("kf/sync_msg", token, {"token": enq["token"]})
    assert [m["text"]["content"] for m in everything["msg_list"]] == ["b"]  # "old" aged out


def test_sync_msg_token_and_argument_errors(api: Api, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "x"}])
    token = api.token(KF_SECRET)
    assert api.post("kf/sync_msg", token, {"token": "ENCbogus"})["errcode"] == 95007
    assert api.post("kf/sync_msg", token, {"open_kfid": "wkNOPE"})["errcode"] == 95000
    assert api.post("kf/sync_msg", token, {"cursor": "%%%"})["errcode"] == 50100
    assert api.post("kf/sync_msg", token, {"limit": 1001})["errcode"] == 40058
    assert api.post("kf/sync_msg", token, {"token": enq["token"]})["errcode"] == 0
    fake.advance(601)  # the callback Token lives 10 minutes
    assert api.post("kf/sync_msg", token, {"token": enq["token"]})["errcode"] == 95007
    assert api.post("kf/sync_msg", token, {})["errcode"] == 0  # token is optional


def test_events_carry_codes_and_messages_we_send_are_not_synced(api: Api, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(
        open_kfid=KF_A,
        messages=[
            {"external_userid": "wm1", "event": "enter_session", "scene": "s1", "scene_param": "p"},
            {"external_userid": "wm1", "text": "hello"},
        ],
    )
    (welcome,) = enq["welcome_codes"]
    token = api.token(KF_SECRET)
    reply = {"touser": "wm1", "open_kfid": KF_A, "msgtype": "text", "text": {"content": "hi"}}
    assert api.post("kf/send_msg", token, reply)["errcode"] == 0
    page = api.post("kf/sync_msg", token, {"token": enq["token"]})
    assert [m["msgtype"] for m in page["msg_list"]] == ["event", "text"]
    event = page["msg_list"][0]
    assert event["origin"] == 4
    assert event["event"] == {
        "event_type": "enter_session",
        "open_kfid": KF_A,
        "external_userid": "wm1",
        "scene": "s1",
        "scene_param": "p",
        "welcome_code": welcome,
    }


def test_empty_page_fault(api: Api, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "x"}])
    fake.fault("kf/sync_msg", "empty_page")
    token = api.token(KF_SECRET)
    first = api.post("kf/sync_msg", token, {"token": enq["token"]})
    assert (first["msg_list"], first["has_more"]) == ([], 1)
    second = api.post("kf/sync_msg", token, {"token": enq["token"], "cursor": first["next_cursor"]})
    assert [m["msgid"] for m in second["msg_list"]] == enq["msgids"]
    assert second["has_more"] == 0


# -- kf/send_msg -------------------------------------------------------------------------------
def kf_text(user: str = "wm1", content: str = "您好", **extra: Any) -> dict[str, Any]:
    return {
        "touser": user,
        "open_kfid": KF_A,
        "msgtype": "text",
        "text": {"content": content},
        **extra,
    }


def test_kf_send_msg_five_per_customer_message(api: Api, fake: FakeWeCom) -> None:
    token = api.token(KF_SECRET)
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 95001  # never wrote to us
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    for i in range(5):
        data = api.post("kf/send_msg", token, kf_text(content=f"a{i}"))
        assert data["errcode"] == 0, data
        assert data["msgid"]
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 95001
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "again"}])
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 0
    assert len(fake.sent("kf/send_msg")) == 6


def test_kf_send_msg_48_hour_window(api: Api, fake: FakeWeCom) -> None:
    token = api.token(KF_SECRET)
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.advance(48 * 3600 + 1)
    token = api.token(KF_SECRET)  # the first one expired meanwhile
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 95002


def test_kf_send_msg_checks(api: Api, fake: FakeWeCom) -> None:
    token = api.token(KF_SECRET)
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    assert api.post("kf/send_msg", token, kf_text(open_kfid="wkNOPE"))["errcode"] == 95000
    assert api.post("kf/send_msg", token, kf_text(user=""))["errcode"] == 40096
    assert api.post("kf/send_msg", token, kf_text(msgtype="news"))["errcode"] == 40008
    assert api.post("kf/send_msg", token, kf_text(content="x" * 2049))["errcode"] == 45002
    assert api.post("kf/send_msg", token, kf_text(msgid="bad id!"))["errcode"] == 40058
    ok = api.post("kf/send_msg", token, kf_text(msgid="my-id_1"))
    assert (ok["errcode"], ok["msgid"]) == (0, "my-id_1")
    assert api.post("kf/send_msg", token, kf_text(msgid="my-id_1"))["errcode"] == 40058
    FakeControl(fake.url).set_session(KF_A, "wm1", 3)
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 95018
    fake.set_session(KF_A, "wm1", 4)
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 95013
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "back"}])
    assert api.post("kf/send_msg", token, kf_text())["errcode"] == 0  # ended → new session


def test_kf_send_msg_on_event_codes(api: Api, fake: FakeWeCom) -> None:
    token = api.token(KF_SECRET)
    enq = fake.enqueue_kf(
        open_kfid=KF_A,
        messages=[
            {"external_userid": "wm7", "event": "enter_session"},
            {"external_userid": "wm8", "event": "enter_session"},
        ],
    )
    code7, code8 = enq["welcome_codes"]
    welcome = {"code": code7, "msgtype": "text", "text": {"content": "欢迎"}}
    assert (
        api.post(
            "kf/send_msg_on_event",
            token,
            {**welcome, "msgtype": "link", "link": {"title": "t", "url": "u"}},
        )["errcode"]
        == 40008
    )
    first = api.post("kf/send_msg_on_event", token, welcome)
    assert first["errcode"] == 0 and first["msgid"]
    assert api.post("kf/send_msg_on_event", token, welcome)["errcode"] == 41050  # single use
    fake.advance(21)  # welcome_code lives 20 s
    late = {"code": code8, "msgtype": "text", "text": {"content": "欢迎"}}
    assert api.post("kf/send_msg_on_event", token, late)["errcode"] == 41050
    assert api.post("kf/send_msg_on_event", token, {"msgtype": "text"})["errcode"] == 41049
    (sent,) = fake.sent("kf/send_msg_on_event")
    assert (sent["touser"], sent["open_kfid"], sent["code_kind"]) == ("wm7", KF_A, "welcome")


# -- faults ------------------------------------------------------------------------------------
def test_errcode_and_http_faults_are_consumed_in_order(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    control = FakeControl(fake.url)
    pending = control.fault("message/send", "errcode", errcode=-1, count=2)
    assert pending == {"message/send": 2}
    control.fault("*", "http", status=502)
    assert api.post("message/send", token, text_msg())["errcode"] == -1
    assert api.post("message/send", token, text_msg())["errcode"] == -1
    resp = api.http.post(
        fake.base_url + "message/send", params={"access_token": token}, data=b"{}", timeout=5
    )
    assert resp.status_code == 502
    assert api.post("message/send", token, text_msg())["errcode"] == 0
    faults = [r["fault"] for r in fake.requests("message/send")]
    assert faults == ["errcode", "errcode", "http", None]
    assert len(fake.sent()) == 1


def test_rate_limit_and_refusal_faults(api: Api, fake: FakeWeCom) -> None:
    token = api.token(KF_SECRET)
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.fault("kf/send_msg", "errcode", errcode=95001)
    fake.fault("kf/send_msg", "errcode", errcode=45009)
    fake.fault("kf/send_msg", "errcode", errcode=45033)
    codes = [api.post("kf/send_msg", token, kf_text())["errcode"] for _ in range(4)]
    assert codes == [95001, 45009, 45033, 0]


def test_token_expired_fault_expires_the_token(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    fake.fault("message/send", "token_expired")
    assert api.post("message/send", token, text_msg())["errcode"] == 42001
    assert api.post("message/send", token, text_msg())["errcode"] == 42001
    assert api.post("message/send", api.token(), text_msg())["errcode"] == 0


def test_delay_fault(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    fake.fault("message/send", "delay", seconds=0.4)
    started = time.monotonic()
    assert api.post("message/send", token, text_msg())["errcode"] == 0
    assert time.monotonic() - started >= 0.4
    fake.fault("message/send", "delay", seconds=2)
    with pytest.raises(requests.ReadTimeout):
        api.post("message/send", token, text_msg(), timeout=0.3)


def test_drop_faults(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    fake.fault("message/send", "drop")
    with pytest.raises(requests.ConnectionError):
        api.post("message/send", token, text_msg())
    assert fake.sent() == []
    fake.fault("message/send", "drop_after")
    with pytest.raises(requests.ConnectionError):
        api.post("message/send", token, text_msg())
    assert len(fake.sent()) == 1  # processed, only the answer was lost
    assert api.post("message/send", token, text_msg())["errcode"] == 0


def test_gettoken_faults_count_as_calls(api: Api, fake: FakeWeCom) -> None:
    fake.fault("gettoken", "errcode", errcode=-1)
    assert api.get("gettoken", corpid=CORP_ID, corpsecret=APP_SECRET)["errcode"] == -1
    assert fake.gettoken_calls == 1
    assert fake.state.stats()["tokens_issued"] == 0


def test_bad_fault_specs_are_refused(fake: FakeWeCom) -> None:
    control = FakeControl(fake.url)
    with pytest.raises(Exception, match="unknown fault kind"):
        control.fault("message/send", "explode")
    with pytest.raises(Exception, match="unknown endpoint"):
        control.fault("message/nope", "drop")


def test_request_log_and_reset(api: Api, fake: FakeWeCom) -> None:
    before = time.time()
    token = api.token()
    api.post("message/send", token, text_msg())
    control = FakeControl(fake.url)
    log = control.requests()
    assert [r["endpoint"] for r in log] == ["gettoken", "message/send"]
    assert all(r["wall_time"] >= before for r in log)
    assert log[1]["content_type"] == "application/json; charset=utf-8"
    assert log[1]["errcode"] == 0
    assert control.stats()["requests_by_endpoint"] == {"gettoken": 1, "message/send": 1}
    assert len(control.sent()) == 1
    control.reset()
    assert control.requests() == [] and control.sent() == []
    assert control.stats()["gettoken_calls"] == 0
    assert api.post("message/send", token, text_msg())["errcode"] == 40014  # tokens forgotten


def test_concurrent_requests_are_all_recorded(api: Api, fake: FakeWeCom) -> None:
    token = api.token()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with requests.Session() as http:
                for _ in range(5):
                    resp = http.post(
                        fake.base_url + "message/send",
                        params={"access_token": token},
                        data=json.dumps(text_msg(), ensure_ascii=False).encode(),
                        timeout=5,
                    )
                    assert resp.json()["errcode"] == 0
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    msgids = [s["msgid"] for s in fake.sent()]
    assert len(msgids) == 40 == len(set(msgids))


def test_stop_interrupts_a_pending_delay(http: requests.Session) -> None:
    fake = FakeWeCom(corp_id=CORP_ID, secret=APP_SECRET).start()
    fake.fault("gettoken", "delay", seconds=30)
    result: list[BaseException | None] = []

    def call() -> None:
        try:
            http.get(fake.base_url + "gettoken", params={"corpid": CORP_ID}, timeout=20)
            result.append(None)
        except requests.RequestException as exc:
            result.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    wait_for(lambda: fake.requests("gettoken"))  # the request is in its 30 s delay
    fake.stop()
    thread.join(10)  # well before the delay would end
    assert not thread.is_alive()
    assert result and isinstance(result[0], requests.ConnectionError)


# -- as a separate process ---------------------------------------------------------------------
def test_runs_as_a_process_and_is_steered_by_the_control_api(http: requests.Session) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.devtools.fakewecom",
            "--port",
            "0",
            "--corp-id",
            CORP_ID,
            "--secret",
            APP_SECRET,
            "--kf-secret",
            KF_SECRET,
            "--kf-account",
            KF_A,
            "--max-lifetime",
            "60",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/cgi-bin/")
        control = FakeControl(base_url)
        control.wait_ready(5)
        enq = control.enqueue_kf(messages=[{"external_userid": "wm1", "text": "hi"}])
        control.fault("kf/sync_msg", "errcode", errcode=45033)
        token = http.get(
            base_url + "gettoken", params={"corpid": CORP_ID, "corpsecret": KF_SECRET}, timeout=5
        ).json()["access_token"]
        url = base_url + "kf/sync_msg"
        body = {"token": enq["token"]}
        busy = http.post(url, params={"access_token": token}, json=body, timeout=5).json()
        assert busy["errcode"] == 45033
        page = http.post(url, params={"access_token": token}, json=body, timeout=5).json()
        assert page["msg_list"][0]["text"]["content"] == "hi"
        assert control.stats()["gettoken_calls"] == 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 0
