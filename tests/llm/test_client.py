"""The chat-completions client and the history, against the fake model over real HTTP."""

from __future__ import annotations

import logging
import time

import pytest

from app.devtools.fakellm import FakeLlm
from app.infra.llm import ChatHistory, LlmClient, LlmError, LlmTimeout
from app.infra.store import MemoryStore
from app.routing.llm_routes import LlmAnswerer
from app.settings.bots import LlmSettings

KEY = "sk-test-very-secret"


@pytest.fixture(params=[True, False], ids=["chunked", "close-delimited"])
def fake(request):
    with FakeLlm(api_key=KEY, chunked=request.param, stall_seconds=5) as server:
        yield server


def client(fake: FakeLlm, **overrides) -> LlmClient:
    fields = {
        "base_url": fake.base_url,
        "api_key": KEY,
        "model": "fake-1",
        "timeout": 5.0,
        **overrides,
    }
    return LlmClient(LlmSettings(**fields))


def test_pieces_arrive_as_they_are_sent(fake) -> None:
    pieces = list(client(fake).stream([{"role": "user", "content": "你好"}]))
    assert len(pieces) > 1 and "".join(pieces) == "模拟回答：你好"
    [request] = fake.requests()
    assert request["authorized"] and request["path"] == "/v1/chat/completions"
    assert request["body"] == {
        "model": "fake-1",
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
    }


def test_errors_never_show_the_key(fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LlmError, match="HTTP 401") as caught:
        client(fake, api_key="sk-wrong-key").complete([{"role": "user", "content": "x"}])
    assert "sk-wrong-key" not in str(caught.value)
    with pytest.raises(LlmError, match="HTTP 500: the fake model failed"):
        client(fake).complete([{"role": "user", "content": "#fail"}])
    assert KEY not in caplog.text and "sk-wrong-key" not in caplog.text
    assert KEY not in repr(client(fake))


def test_the_timeout_bounds_the_whole_answer() -> None:
    with FakeLlm(api_key=KEY, stall_seconds=5) as fake:
        started = time.monotonic()
        with pytest.raises(LlmTimeout):
            client(fake, timeout=0.5).complete([{"role": "user", "content": "#stall"}])
        assert time.monotonic() - started >= 0.5


def test_an_unreachable_model() -> None:
    settings = LlmSettings(base_url="http://127.0.0.1:9/v1", model="m", timeout=2.0)
    with pytest.raises(LlmError, match="cannot reach"):
        LlmClient(settings).complete([{"role": "user", "content": "x"}])


def test_history_system_prompt_and_fallback(fake, caplog) -> None:
    store = MemoryStore()
    answerer = LlmAnswerer(
        client(fake), ChatHistory(lambda: store, turns=2), "你是助手", "响应错误"
    )
    for question in ("一", "二", "三"):
        assert answerer.answer("bot:user:u1", question) == f"模拟回答：{question}"
    sent = fake.requests()[-1]["body"]["messages"]
    assert sent == [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": "一"},
        {"role": "assistant", "content": "模拟回答：一"},
        {"role": "user", "content": "二"},
        {"role": "assistant", "content": "模拟回答：二"},
        {"role": "user", "content": "三"},
    ]
    assert len(answerer.history.load("bot:user:u1")) == 4  # two turns kept
    assert answerer.history.load("bot:user:other") == []
    assert answerer.answer("bot:user:u1", "#fail") == "响应错误"
    assert sum("model answer for - failed" in r.getMessage() for r in caplog.records) == 1
    assert len(answerer.history.load("bot:user:u1")) == 4  # a failed turn is not recorded
