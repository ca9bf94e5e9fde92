"""Forward mode for 微信客服: the kf item goes to the backend with "source": "kf"."""

from __future__ import annotations

import json

import pytest

from tests.helpers import wait_for
from tests.kf.conftest import KF_A
from tests.test_forward import Backend


@pytest.fixture
def backend():
    server = Backend()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def app_config(app_config, backend):
    return app_config | {"WECOM_FORWARD_URL": backend.url, "WECOM_FORWARD_TIMEOUT": 2}


def test_customer_message_is_forwarded_with_kf_field_names(customers, backend):
    backend.answer(200, "application/json", json.dumps({"code": 200, "data": "已发货"}))
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "查订单"})
    wait_for(lambda: customers.texts() == ["已发货"])
    (sent,) = backend.received
    assert sent["source"] == "kf"
    assert sent["msgid"] == queued["msgids"][0]
    assert (sent["open_kfid"], sent["external_userid"], sent["origin"]) == (KF_A, "wm1", 3)
    assert sent["msgtype"] == "text" and sent["text"] == {"content": "查订单"}


def test_backend_reply_objects_and_failures(customers, backend):
    image = {"code": 200, "data": {"msgtype": "image", "image": {"media_id": "MEDIA"}}}
    backend.answer(200, "application/json", json.dumps(image))
    backend.answer(500, "text/plain", "down")
    customers.write(KF_A, {"external_userid": "wm1", "text": "图"})
    wait_for(lambda: len(customers.answers()) == 1)
    customers.write(KF_A, {"external_userid": "wm1", "text": "坏"})
    wait_for(lambda: len(customers.answers()) == 2)
    first, second = customers.answers()
    assert first["body"]["image"] == {"media_id": "MEDIA"}
    assert second["body"]["text"]["content"] == "响应错误"  # WECOM_FORWARD_FALLBACK


def test_events_are_forwarded_but_a_failure_answers_nobody(customers, backend):
    backend.answer(500, "text/plain", "down")
    customers.write(
        KF_A, {"external_userid": "wm1", "event": "user_recall_msg", "recall_msgid": "X"}
    )
    wait_for(lambda: backend.received)
    (sent,) = backend.received
    assert sent["event"]["event_type"] == "user_recall_msg" and sent["source"] == "kf"
    customers.write(KF_A, {"external_userid": "wm1", "text": "later"})
    wait_for(lambda: len(customers.answers()) == 1)
    assert customers.texts() == ["ok"]  # the backend's default answer to "later" only
