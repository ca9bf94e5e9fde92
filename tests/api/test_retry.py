"""The client's one retry loop, and its hook for tries that may have reached WeCom, against the
fake WeCom API over loopback."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from app.devtools.fakewecom import FakeWeCom
from app.infra.api import (
    RetryPolicy,
    WeComAPIError,
    WeComClient,
    WeComRefusalError,
    WeComRetryableError,
    WeComTransportError,
)
from app.infra.store.memory import MemoryStore
from tests.api.conftest import AGENT_ID, APP_SECRET, CORP_ID, KF_A, make_client, send_text
from tests.helpers import wait_for

TEXT = {"touser": "u1", "msgtype": "text", "text": {"content": "x"}, "agentid": AGENT_ID}


def send_reporting(client: WeComClient) -> tuple[list[WeComAPIError], dict[str, Any]]:
    """message/send through ``call`` with the hook; (the tries reported, the answer)."""
    reported: list[WeComAPIError] = []
    answer = client.call("POST", "message/send", body=TEXT, on_maybe_reached=reported.append)
    return reported, answer


def free_port() -> int:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- transient failures: retried with backoff ----------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "errcode", "errcode": -1},
        {"kind": "errcode", "errcode": 45009},
        {"kind": "errcode", "errcode": 45033},
        {"kind": "http", "status": 500},
        {"kind": "http", "status": 503},
        {"kind": "drop"},
    ],
    ids=["busy", "rate-limit", "concurrency", "http500", "http503", "dropped"],
)
def test_transient_faults_are_retried(
    client: WeComClient, fake: FakeWeCom, fault: dict[str, Any]
) -> None:
    fake.add_faults("message/send", fault, count=2)
    assert send_text(client, "u1", "x")["errcode"] == 0
    assert len(fake.requests("message/send")) == 3
    assert len(fake.sent()) == 1


def test_gettoken_is_retried_too(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fault("gettoken", "errcode", errcode=-1)
    fake.fault("gettoken", "drop")
    assert send_text(client, "u1", "x")["errcode"] == 0
    assert fake.gettoken_calls == 3


def test_retries_are_bounded(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fault("message/send", "errcode", errcode=-1, count=10)
    with pytest.raises(WeComRetryableError, match="errcode -1") as info:
        send_text(client, "u1", "x")
    assert info.value.errcode == -1
    assert len(fake.requests("message/send")) == 4  # FAST_RETRY.attempts


def test_failing_gettoken_is_not_retried_by_the_outer_loop(
    client: WeComClient, fake: FakeWeCom
) -> None:
    fake.fault("gettoken", "errcode", errcode=-1, count=20)
    with pytest.raises(WeComRetryableError):
        send_text(client, "u1", "x")
    assert fake.gettoken_calls == 4  # not 4 x 4


def test_delay_beyond_the_timeout_is_retried_then_fails(
    fake: FakeWeCom, store: MemoryStore
) -> None:
    retry = RetryPolicy(attempts=2, max_time=10.0, backoff=0.01, max_backoff=0.02)
    with make_client(fake, store, timeout=(1.0, 0.3), retry=retry) as c:
        c.tokens.get_token()
        fake.fault("message/send", "delay", seconds=1.0, count=2)
        with pytest.raises(WeComTransportError, match="Timeout") as info:
            send_text(c, "u1", "x")
    assert info.value.retryable and info.value.errcode is None
    assert len(fake.requests("message/send")) == 2


def test_a_slow_answer_within_the_timeout_is_fine(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fault("message/send", "delay", seconds=0.2)
    assert send_text(client, "u1", "x")["errcode"] == 0
    assert len(fake.requests("message/send")) == 1


# -- the hook: which tries may have reached WeCom ------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [{"kind": "drop_after"}, {"kind": "drop"}, {"kind": "http", "status": 502}],
    ids=["reset-after-processing", "reset-before-processing", "http502"],
)
def test_a_broken_answer_is_reported_as_maybe_reached(
    client: WeComClient, fake: FakeWeCom, fault: dict[str, Any]
) -> None:
    """The client cannot tell a reset after WeCom acted from one before: both are reported."""
    fake.add_faults("message/send", fault)
    reported, answer = send_reporting(client)
    assert answer["errcode"] == 0  # the retry got through
    (first,) = reported
    assert first.may_have_reached and first.api == "message/send" and first.errcode is None
    tries = fake.requests("message/send")
    assert [t["fault"] for t in tries] == [fault["kind"], None]


def test_a_timeout_is_reported_and_its_try_did_reach_wecom(
    fake: FakeWeCom, store: MemoryStore
) -> None:
    with make_client(fake, store, timeout=(2.0, 0.2)) as c:
        c.tokens.get_token()
        fake.fault("message/send", "delay", seconds=0.6)
        reported, answer = send_reporting(c)
    assert answer["errcode"] == 0
    (timed_out,) = reported
    assert isinstance(timed_out, WeComTransportError) and "Timeout" in str(timed_out)
    # The try the client gave up on was processed after all: message/send, which has no msgid,
    # delivers it twice. That is what the hook lets a caller with a msgid account for.
    wait_for(lambda: len(fake.sent("message/send")) == 2)


def test_a_lost_kf_answer_then_the_repeat_refusal(kf_client: WeComClient, fake: FakeWeCom) -> None:
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.fault("kf/send_msg", "drop_after")  # processed, but the answer never arrives
    reported: list[WeComAPIError] = []
    with pytest.raises(WeComAPIError) as info:
        kf_client.kf_send_msg(
            "wm1",
            KF_A,
            "text",
            {"content": "once"},
            msgid="once-1",
            on_maybe_reached=reported.append,
        )
    assert [r.api for r in reported] == ["kf/send_msg"]
    assert info.value.errcode == 40058 and not info.value.may_have_reached
    assert len(fake.sent("kf/send_msg")) == 1  # the retry with the same msgid was refused


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ([{"kind": "errcode", "errcode": -1}] * 2, None),
        ([{"kind": "errcode", "errcode": 45009}], None),
        ([{"kind": "token_expired"}], None),
        ([{"kind": "errcode", "errcode": 45002}], WeComRefusalError),
        ([{"kind": "errcode", "errcode": -1}] * 4, WeComRetryableError),
    ],
    ids=["busy-then-ok", "rate-limited-then-ok", "token-refused", "refused", "busy-to-the-end"],
)
def test_a_wecom_errcode_is_never_reported(
    client: WeComClient,
    fake: FakeWeCom,
    faults: list[dict[str, Any]],
    error: type[WeComAPIError] | None,
) -> None:
    fake.add_faults("message/send", *faults)
    if error is None:
        reported, _ = send_reporting(client)
    else:
        reported = []
        with pytest.raises(error) as info:
            client.call("POST", "message/send", body=TEXT, on_maybe_reached=reported.append)
        assert not info.value.may_have_reached
    assert reported == []
    assert len(fake.requests("message/send")) == len(faults) + (error is None)


def test_a_refused_connection_is_not_reported(client: WeComClient, store: MemoryStore) -> None:
    """Nothing listens: the request never left, so WeCom cannot have seen it."""
    client.tokens.get_token()  # the token is in the shared store; the send goes elsewhere
    base = f"http://127.0.0.1:{free_port()}/cgi-bin/"
    reported: list[WeComAPIError] = []
    with (
        WeComClient(CORP_ID, APP_SECRET, store, api_base=base, retry=_fast(2)) as c,
        pytest.raises(WeComTransportError, match="ConnectionError") as info,
    ):
        c.call("POST", "message/send", body=TEXT, on_maybe_reached=reported.append)
    assert info.value.api == "message/send" and info.value.retryable
    assert not info.value.may_have_reached
    assert reported == []


def test_a_failing_gettoken_inside_a_call_is_not_reported(
    kf_client: WeComClient, fake: FakeWeCom
) -> None:
    fake.enqueue_kf(open_kfid=KF_A, messages=[{"external_userid": "wm1", "text": "q"}])
    fake.fault("gettoken", "drop")  # the token fetch breaks; the send itself never started
    reported: list[WeComAPIError] = []
    kf_client.kf_send_msg(
        "wm1", KF_A, "text", {"content": "a"}, msgid="m1", on_maybe_reached=reported.append
    )
    assert reported == []
    assert fake.gettoken_calls == 2 and len(fake.sent("kf/send_msg")) == 1


def _fast(attempts: int) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, max_time=5.0, backoff=0.01, max_backoff=0.02)
