"""The model answers text on every kind of endpoint that names no handlers: the bot (streamed),
an app (passive when fast, message/send when slow) and 微信客服 (kf/send_msg)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.devtools.bot_simulator import BotSimulator
from app.devtools.fakellm import FakeLlm
from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator
from tests.aibot.conftest import BOT_AES_KEY, BOT_TOKEN
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN, client_transport
from tests.helpers import wait_for

SECRET = "app-secret-llm"
KF_SECRET = "kf-secret-llm"


@pytest.fixture
def model():
    with FakeLlm(api_key="sk-llm", chunk_delay=0.02) as fake:
        yield fake


@pytest.fixture
def build(model):
    apps = []

    def make(**config):
        app = create_app(
            {
                **BASE_CONFIG,
                "WECOM_LLM_BASE_URL": model.base_url,
                "WECOM_LLM_API_KEY": "sk-llm",
                "WECOM_LLM_MODEL": "fake-1",
                "WECOM_LLM_SYSTEM_PROMPT": "你是测试助手",
                **config,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["wecom"].stop_background()


def wecom(app) -> Simulator:
    return Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))


def bot(app) -> BotSimulator:
    return BotSimulator(
        "/bot", BOT_TOKEN, BOT_AES_KEY, transport=client_transport(app.test_client())
    )


def llm_calls(result: str) -> float:
    labels = {"backend": "llm", "result": result}
    return REGISTRY.get_sample_value("wecom_backend_requests_total", labels) or 0.0


def test_app_answers_passively_when_the_model_is_fast(build, model, caplog) -> None:
    app = build()
    ok, errors = llm_calls("ok"), llm_calls("error")
    assert wecom(app).send_text("你好").reply["Content"] == "模拟回答：你好"
    assert wecom(app).send_text("再见").reply["Content"] == "模拟回答：再见"
    messages = model.requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert wecom(app).send_event("click", EventKey="M1").reply["Content"] == "你点击了菜单：M1"
    assert wecom(app).send_text("#fail").reply["Content"] == "响应错误"
    assert "sk-llm" not in caplog.text
    assert (llm_calls("ok") - ok, llm_calls("error") - errors) == (2, 1)


def test_app_sends_a_slow_answer_with_message_send(build) -> None:
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as fake:
        app = build(
            WECOM_REPLY_DEADLINE=0.1,
            WECOM_SECRET=SECRET,
            WECOM_AGENT_ID="1000002",
            WECOM_API_BASE=fake.base_url,
        )
        result = wecom(app).send_text("慢一点" * 10, FromUserName="lisi")
        assert result.body == b""
        [sent] = wait_for(lambda: fake.sent("message/send"))
        assert sent["body"]["touser"] == "lisi"
        assert sent["body"]["text"]["content"] == "模拟回答：" + "慢一点" * 10


def test_explicit_handlers_are_not_replaced(build, model) -> None:
    app = build(WECOM_HANDLERS="tests.handlers_recording")
    assert wecom(app).send_text("你好").reply["Content"] == "got text/-"
    assert model.requests() == []


def test_kf_answers_go_out_with_send_msg(build) -> None:
    account = "wkLLM00000001"
    with FakeWeCom(
        corp_id=CORP_ID, secret=SECRET, kf_secret=KF_SECRET, kf_accounts=[account]
    ) as fake:
        app = build(
            WECOM_KF_TOKEN=TOKEN,
            WECOM_KF_AES_KEY=AES_KEY,
            WECOM_KF_SECRET=KF_SECRET,
            WECOM_API_BASE=fake.base_url,
        )
        queued = fake.enqueue_kf(
            open_kfid=account, messages=[{"external_userid": "wmC1", "text": "在吗"}]
        )
        doorbell = Simulator(
            "/kf", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client())
        )
        assert doorbell.send_kf_callback(queued["token"], account).body == b""
        [sent] = wait_for(lambda: fake.sent("kf/send_msg"))
        assert (sent["touser"], sent["body"]["text"]["content"]) == ("wmC1", "模拟回答：在吗")


def test_bot_streams_the_model(build, model) -> None:
    app = build(WECOM_BOT_TOKEN=BOT_TOKEN, WECOM_BOT_AES_KEY=BOT_AES_KEY)
    simulator = bot(app)
    first = simulator.text("@助手 讲讲", chattype="group", chatid="G1")
    frames = simulator.follow(first, interval=0.05, timeout=5)
    assert frames[-1]["content"] == "模拟回答：讲讲"
    assert model.requests()[-1]["body"]["messages"][-1] == {"role": "user", "content": "讲讲"}
    welcome = simulator.send(simulator.event("enter_chat")).reply
    assert welcome["msgtype"] == "text"  # the demo's events stay
    failed = simulator.follow(simulator.text("#fail"), interval=0.05, timeout=5)
    assert failed[-1]["content"] == "响应错误"
