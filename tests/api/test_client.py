"""WeComClient against the fake WeCom server over loopback."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import (
    RetryPolicy,
    WeComAPIError,
    WeComClient,
    WeComConfigError,
    WeComRefusalError,
    WeComTokenError,
    WeComTransportError,
    mask_url,
)
from app.infra.api.errors import error_for
from app.infra.store.memory import MemoryStore
from tests.api.conftest import (
    AGENT_ID,
    APP_SECRET,
    CORP_ID,
    KF_A,
    KF_B,
    make_client,
    send_text,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def requests_to(fake: FakeWeCom, endpoint: str) -> list[dict[str, Any]]:
    return fake.requests(endpoint)


# -- sending and the token cache -------------------------------------------------------------------
def test_one_gettoken_for_many_sends(client: WeComClient, fake: FakeWeCom) -> None:
    for i in range(10):
        answer = send_text(client, "zhangsan", f"第{i}条")
        assert answer["errcode"] == 0
        assert answer["msgid"]
    assert fake.gettoken_calls == 1
    assert [s["body"]["text"]["content"] for s in fake.sent()] == [f"第{i}条" for i in range(10)]


def test_body_is_utf8_json_without_escapes(client: WeComClient, fake: FakeWeCom) -> None:
    send_text(client, ["zhangsan", "lisi"], "中文内容 ✓", safe=1)
    (request,) = requests_to(fake, "message/send")
    assert request["content_type"] == "application/json; charset=utf-8"
    (sent,) = fake.sent()
    assert sent["body"] == {
        "touser": "zhangsan|lisi",
        "msgtype": "text",
        "text": {"content": "中文内容 ✓"},
        "safe": 1,
        "agentid": AGENT_ID,
    }


def test_send_message_passes_any_msgtype_and_fills_in_the_agentid(
    client: WeComClient, fake: FakeWeCom
) -> None:
    card = {"card_type": "text_notice", "main_title": {"title": "t"}}
    answer = client.send_message(
        {"touser": "u1", "msgtype": "template_card", "template_card": card}
    )
    assert "response_code" in answer
    (sent,) = fake.sent()
    assert sent["body"] == {
        "touser": "u1",
        "msgtype": "template_card",
        "template_card": card,
        "agentid": AGENT_ID,
    }


def test_send_message_needs_an_agent_id(fake: FakeWeCom, store: MemoryStore) -> None:
    with make_client(fake, store, agent_id=None) as c, pytest.raises(ValueError, match="agent"):
        send_text(c, "u1", "x")


def test_refreshes_before_expiry(fake: FakeWeCom, store: MemoryStore) -> None:
    clock = Clock(1_700_000_000.0)
    with make_client(fake, store, clock=clock) as c:
        send_text(c, "u1", "a")
        clock.now += 7200 - 301
        send_text(c, "u1", "b")
        assert fake.gettoken_calls == 1
        clock.now += 2  # 299 s before expiry
        send_text(c, "u1", "c")
        assert fake.gettoken_calls == 2
    used = [r["query"]["access_token"] for r in requests_to(fake, "message/send")]
    assert used[0] == used[1] != used[2]


# -- refused tokens: refresh once, retry once ------------------------------------------------------
def test_42001_refreshes_and_retries_once(client: WeComClient, fake: FakeWeCom) -> None:
    send_text(client, "u1", "warm up")
    fake.fault("message/send", "token_expired")
    assert send_text(client, "u1", "after refresh")["errcode"] == 0
    assert fake.gettoken_calls == 2
    assert [r["errcode"] for r in requests_to(fake, "message/send")] == [0, 42001, 0]


def test_40014_refreshes_and_retries_once(client: WeComClient, fake: FakeWeCom) -> None:
    send_text(client, "u1", "warm up")
    fake.revoke_tokens()
    assert send_text(client, "u1", "after refresh")["errcode"] == 0
    assert fake.gettoken_calls == 2
    assert len(fake.sent()) == 2


def test_token_refused_twice_is_not_a_loop(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fault("message/send", "token_expired", count=3)
    with pytest.raises(WeComTokenError, match="42001") as info:
        send_text(client, "u1", "x")
    assert info.value.token_invalid
    assert fake.gettoken_calls == 2
    assert len(requests_to(fake, "message/send")) == 2


def test_another_workers_refresh_is_picked_up(fake: FakeWeCom, store: MemoryStore) -> None:
    with make_client(fake, store) as a, make_client(fake, store) as b:
        send_text(a, "u1", "a")
        fake.revoke_tokens()
        send_text(b, "u1", "b")  # b refreshes in the shared store
        send_text(a, "u1", "a again")  # a's token is the new one already: no refusal
    assert fake.gettoken_calls == 2
    assert [r["errcode"] for r in requests_to(fake, "message/send")] == [0, 40014, 0, 0]


# -- configuration errors: never retried, errcode named ------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [({"corp_id": "wwwrongcorp"}, 40013), ({"secret": "wrong-secret"}, 40001)],
)
def test_gettoken_config_errors(
    fake: FakeWeCom, store: MemoryStore, overrides: dict[str, object], errcode: int
) -> None:
    with make_client(fake, store, **overrides) as c, pytest.raises(WeComConfigError) as info:
        send_text(c, "u1", "x")
    assert str(errcode) in str(info.value)
    assert info.value.errcode == errcode and info.value.api == "gettoken"
    assert info.value.config_error and not info.value.retryable
    assert fake.gettoken_calls == 1
    assert APP_SECRET not in str(info.value)


def test_unknown_agentid_is_a_config_error(fake: FakeWeCom, store: MemoryStore) -> None:
    with make_client(fake, store, agent_id=4242) as c, pytest.raises(WeComConfigError) as info:
        send_text(c, "u1", "x")
    assert info.value.errcode == 40056
    assert "40056" in str(info.value)
    assert len(requests_to(fake, "message/send")) == 1


def test_60020_hints_at_the_trusted_ip_list(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fault("message/send", "errcode", errcode=60020)
    with pytest.raises(WeComConfigError, match="trusted-IP") as info:
        send_text(client, "u1", "x")
    assert "60020" in str(info.value)
    assert len(requests_to(fake, "message/send")) == 1


def test_kf_without_permission_is_48002(fake: FakeWeCom, store: MemoryStore) -> None:
    fake.add_app("no-kf", agent_id=1000005, kf=False)
    with make_client(fake, store, secret="no-kf") as c, pytest.raises(WeComConfigError) as info:
        c.kf_sync_msg(None, KF_A)
    assert info.value.errcode == 48002


# -- refusals --------------------------------------------------------------------------------------
def test_kf_refusal_is_not_retried(kf_client: WeComClient, fake: FakeWeCom) -> None:
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.fault("kf/send_msg", "errcode", errcode=95001)
    with pytest.raises(WeComRefusalError, match="95001") as info:
        kf_client.kf_send_msg("wm1", KF_A, "text", {"content": "a"}, msgid="m1")
    assert info.value.refusal and not info.value.retryable
    assert len(requests_to(fake, "kf/send_msg")) == 1


def test_real_kf_limits_surface_as_refusals(kf_client: WeComClient, fake: FakeWeCom) -> None:
    with pytest.raises(WeComRefusalError) as info:
        kf_client.kf_send_msg("wm-never-wrote", KF_A, "text", {"content": "hi"}, msgid="m1")
    assert info.value.errcode == 95001
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.advance(48 * 3600 + 5)
    with pytest.raises(WeComRefusalError) as info:
        kf_client.kf_send_msg("wm1", KF_A, "text", {"content": "late"}, msgid="m2")
    assert info.value.errcode == 95002


def test_too_long_text_is_refused(client: WeComClient) -> None:
    with pytest.raises(WeComRefusalError) as info:
        send_text(client, "u1", "字" * 700)  # 2100 bytes
    assert info.value.errcode == 45002


# -- 微信客服 -------------------------------------------------------------------------------------
def test_kf_sync_pages_through_has_more_and_empty_pages(
    kf_client: WeComClient, fake: FakeWeCom
) -> None:
    enq = fake.enqueue_kf(
        open_kfid=KF_A,
        messages=[{"external_userid": "wm1", "text": f"消息{i}"} for i in range(7)],
    )
    fake.enqueue_kf(open_kfid=KF_B, messages=[{"external_userid": "wm9", "text": "other"}])
    fake.fault("kf/sync_msg", "empty_page")  # the first page comes back empty with has_more=1
    pages = list(kf_client.iter_kf_sync(enq["token"], KF_A, limit=3))
    assert [len(p["msg_list"]) for p in pages] == [0, 3, 3, 1]
    assert [p["has_more"] for p in pages] == [1, 1, 1, 0]
    got = [m["msgid"] for p in pages for m in p["msg_list"]]
    assert got == enq["msgids"]
    # Resuming from the persisted cursor returns nothing new.
    tail = kf_client.kf_sync_msg(enq["token"], KF_A, cursor=pages[-1]["next_cursor"])
    assert (tail["msg_list"], tail["has_more"]) == ([], 0)


def test_kf_sync_page_limit_is_bounded(kf_client: WeComClient, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(
        open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": str(i)} for i in range(5)]
    )
    pages = list(kf_client.iter_kf_sync(enq["token"], KF_A, limit=1, max_pages=2))
    assert len(pages) == 2 and pages[-1]["has_more"] == 1


def test_kf_sync_with_a_stale_callback_token(kf_client: WeComClient, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "x"}])
    fake.advance(601)
    with pytest.raises(WeComAPIError) as info:
        kf_client.kf_sync_msg(enq["token"], KF_A)
    assert info.value.errcode == 95007
    assert not info.value.retryable


def test_kf_send_and_welcome(kf_client: WeComClient, fake: FakeWeCom) -> None:
    enq = fake.enqueue_kf(
        open_kfid=KF_A,
        messages=[
            {"external_userid": "wm1", "event": "enter_session"},
            {"external_userid": "wm1", "text": "在吗"},
        ],
    )
    page = kf_client.kf_sync_msg(enq["token"], KF_A)
    code = page["msg_list"][0]["event"]["welcome_code"]
    welcome = kf_client.kf_send_msg_on_event(code, "text", {"content": "欢迎光临"}, msgid="w-1")
    assert welcome["errcode"] == 0
    answer = kf_client.kf_send_msg("wm1", KF_A, "text", {"content": "在的"}, msgid="order-42")
    assert answer["msgid"] == "order-42"
    sent = fake.sent()
    assert [s["api"] for s in sent] == ["kf/send_msg_on_event", "kf/send_msg"]
    assert [s["body"]["msgid"] for s in sent] == ["w-1", "order-42"]
    for bad in ("not valid!", "", "x" * 33):
        with pytest.raises(ValueError, match="msgid"):
            kf_client.kf_send_msg("wm1", KF_A, "text", {"content": "x"}, msgid=bad)
    assert len(fake.requests("kf/send_msg")) == 1  # a bad msgid never leaves the client


# -- secrets never leak ----------------------------------------------------------------------------
def test_logs_never_show_the_secret_or_the_token(
    client: WeComClient, fake: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fault("message/send", "errcode", errcode=-1)
    fake.fault("message/send", "token_expired")
    send_text(client, "u1", "x")
    token = client.tokens.get_token()
    text = caplog.text
    assert "message/send" in text
    assert "access_token=***" in text  # urllib3's request lines were masked, not dropped
    assert APP_SECRET not in text
    for request in requests_to(fake, "message/send"):
        assert request["query"]["access_token"] not in text
    assert token not in text


def test_transport_errors_mask_the_url(store: MemoryStore) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    retry = RetryPolicy(attempts=2, max_time=5.0, backoff=0.01, max_backoff=0.02)
    with (
        WeComClient(
            CORP_ID,
            APP_SECRET,
            store,
            agent_id=AGENT_ID,
            api_base=f"http://127.0.0.1:{port}/cgi-bin",
            retry=retry,
            timeout=(1.0, 1.0),
        ) as c,
        pytest.raises(WeComTransportError) as info,
    ):
        send_text(c, "u1", "x")
    message = str(info.value)
    assert "ConnectionError" in message
    assert APP_SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_mask_url() -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=S3CR3T&x=1"
    assert mask_url(url) == (
        "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=***&x=1"
    )
    assert mask_url("/cgi-bin/message/send?access_token=abc-DEF_1") == (
        "/cgi-bin/message/send?access_token=***"
    )


@pytest.mark.parametrize(
    ("errcode", "api", "flag"),
    [
        (-1, "message/send", "retryable"),
        (45009, "message/send", "retryable"),
        (45033, "kf/sync_msg", "retryable"),
        (40014, "message/send", "token_invalid"),
        (42001, "kf/send_msg", "token_invalid"),
        (41001, "message/send", "token_invalid"),
        (40001, "message/send", "token_invalid"),
        (40001, "gettoken", "config_error"),
        (40091, "gettoken", "config_error"),
        (40013, "gettoken", "config_error"),
        (40056, "message/send", "config_error"),
        (48002, "kf/sync_msg", "config_error"),
        (60020, "message/send", "config_error"),
        (95001, "kf/send_msg", "refusal"),
        (95002, "kf/send_msg", "refusal"),
        (95013, "kf/send_msg", "refusal"),
        (95018, "kf/send_msg", "refusal"),
        (81013, "message/send", "refusal"),
        (45002, "message/send", "refusal"),
    ],
)
def test_error_classification(errcode: int, api: str, flag: str) -> None:
    error = error_for(errcode, "msg", api)
    flags = {
        f: getattr(error, f) for f in ("retryable", "token_invalid", "config_error", "refusal")
    }
    assert flags == {f: f == flag for f in flags}
    assert f"errcode {errcode}" in str(error)


def test_unknown_errcodes_are_plain_errors() -> None:
    error = error_for(12345, "whatever", "message/send")
    assert type(error) is WeComAPIError
    assert not (error.retryable or error.token_invalid or error.config_error or error.refusal)


def test_cooperative_under_gevent() -> None:
    """In a gevent-patched process (as in the gunicorn worker) greenlets share one gettoken."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.api._gevent_check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"ok": 40, "gettoken_calls": 1, "sent": 40}


def test_errors_survive_pickling() -> None:
    for error in (
        error_for(95001, "send msg count limit", "kf/send_msg"),
        WeComTransportError("ReadTimeout: ...", "message/send"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.errcode, copy.api, str(copy)) == (error.errcode, error.api, str(error))
