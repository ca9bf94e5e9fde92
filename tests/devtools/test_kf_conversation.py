"""``flask simulate kf`` and the conversation under it: a customer writes at the fake, the
service (served over real HTTP) pulls and answers, the long poll collects the answers."""

from __future__ import annotations

import threading

import pytest
import requests

from app.devtools.fakewecom import FakeControl, FakeWeCom
from app.devtools.kf_conversation import answers_to, converse, describe
from app.devtools.simulator import Simulator
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.devtools.conftest import served
from tests.helpers import wait_for

KF_SECRET = "kf-secret-for-devtools"
KF = "wkDEVTOOLS0001"


@pytest.fixture
def fake():
    with FakeWeCom(
        corp_id=CORP_ID, secret="app-secret", kf_secret=KF_SECRET, kf_accounts=[KF]
    ) as f:
        yield f


@pytest.fixture
def app_config(fake) -> dict:
    return {
        "TESTING": True,
        "WECOM_KF_TOKEN": TOKEN,
        "WECOM_KF_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_KF_SECRET": KF_SECRET,
        "WECOM_KF_WELCOME": "欢迎光临",
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": "memory://",
    }


def test_the_long_poll_returns_when_the_service_sends(fake):
    control = FakeControl(fake.url)
    fake.enqueue_kf(open_kfid=KF, messages=[{"external_userid": "wm1", "text": "hi"}])
    got: list = []
    poll = threading.Thread(target=lambda: got.append(control.sent_since(0, wait=60)))
    poll.start()
    wait_for(lambda: control.stats()["waiting"] == 1)
    params = {"corpid": CORP_ID, "corpsecret": KF_SECRET}
    token = requests.get(fake.base_url + "gettoken", params=params, timeout=5).json()
    answer = {"touser": "wm1", "open_kfid": KF, "msgtype": "text", "text": {"content": "yo"}}
    sent = requests.post(
        fake.base_url + "kf/send_msg",
        params={"access_token": token["access_token"]},
        json=answer,
        timeout=5,
    ).json()
    assert sent["errcode"] == 0
    poll.join(10)  # far below the poll's 60 s: it returned on the send, not on its timeout
    assert not poll.is_alive()
    items, total = got[0]
    assert total == 1 and describe(items[0]) == "yo"
    assert control.stats()["waiting"] == 0


def test_stopping_the_fake_ends_a_long_poll(fake):
    control = FakeControl(fake.url)
    poll = threading.Thread(target=lambda: control.sent_since(0, wait=60))
    poll.start()
    wait_for(lambda: control.stats()["waiting"] == 1)
    fake.stop()
    poll.join(10)
    assert not poll.is_alive()


def test_converse_collects_every_answer_to_the_customer(app, fake):
    with served(app) as port:
        simulator = Simulator(f"http://127.0.0.1:{port}/kf", TOKEN, AES_KEY, CORP_ID)
        messages = [
            {"external_userid": "wm1", "text": "你好"},
            {"external_userid": "wm2", "text": "别人"},
            {"external_userid": "wm1", "msgtype": "image", "image": {"media_id": "M"}},
        ]
        answers = converse(simulator, FakeControl(fake.url), KF, "wm1", messages, 30, expect=2)
    assert [describe(a) for a in answers] == ["你好,这是测试机器人", "收到图片"]
    assert [a["touser"] for a in answers_to(fake.sent(), "wm2")] == ["wm2"]


def test_converse_without_an_answer_returns_empty_after_wait(app, fake):
    with served(app) as port:
        simulator = Simulator(f"http://127.0.0.1:{port}/kf", TOKEN, AES_KEY, CORP_ID)
        servicer = {"external_userid": "wm1", "origin": 5, "text": "a servicer wrote"}
        answers = converse(simulator, FakeControl(fake.url), KF, "wm1", [servicer], wait=0.2)
    assert answers == []


def test_simulate_kf_commands_find_service_and_fake(app, fake):
    runner = app.test_cli_runner()
    with served(app) as port:
        env = {"PORT": str(port)}
        text = runner.invoke(args=["simulate", "kf", "text", "你好", "--user", "wmA"], env=env)
        enter = runner.invoke(args=["simulate", "kf", "enter", "--user", "wmB"], env=env)
        sent = runner.invoke(args=["simulate", "kf", "sent", "--user", "wmB"], env=env)
    assert (text.exit_code, text.output.strip()) == (0, "你好,这是测试机器人"), text.output
    assert (enter.exit_code, enter.output.strip()) == (0, "欢迎光临"), enter.output
    assert sent.output.strip() == "wmB\tkf/send_msg_on_event\t欢迎光临"


def test_simulate_kf_errors_are_one_line(app, dead_port):
    runner = app.test_cli_runner()
    far = runner.invoke(args=["simulate", "kf", "sent", "--fake", "http://10.1.2.3:9999/"])
    assert far.exit_code == 2 and "loopback" in far.output
    dead = f"http://127.0.0.1:{dead_port}/cgi-bin/"
    down = runner.invoke(args=["simulate", "kf", "sent", "--fake", dead])
    assert down.exit_code == 1 and "cannot reach the fake WeCom API" in down.output
    assert "Traceback" not in far.output + down.output
