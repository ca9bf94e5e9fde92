"""Every message and event type of the protocol reference, through the blueprint: each one is
verified, decrypted, parsed into the same dict the protocol layer gives, routed and answered."""

from __future__ import annotations

import pytest

from app.wecom import parse_message
from tests.handlers_recording import SEEN
from tests.wecom.samples import SAMPLES

ROUTED = {name: xml for name, xml in SAMPLES.items() if name != "kf_msg_or_event"}


@pytest.fixture
def app_config(app_config):
    return app_config | {"WECOM_HANDLERS": "tests.handlers_recording"}


@pytest.mark.parametrize("name", sorted(ROUTED))
def test_every_sample_reaches_the_handler_as_the_parsed_dict(wecom, name):
    SEEN.clear()
    result = wecom.send_xml(ROUTED[name])
    assert result.status == 200
    expected = parse_message(ROUTED[name])
    assert [expected] == SEEN
    assert result.reply["Content"] == f"got {expected['MsgType']}/{expected.get('Event', '-')}"


def test_nested_structures_arrive_usable(wecom):
    SEEN.clear()
    wecom.send_xml(SAMPLES["event_pic_sysphoto"])
    wecom.send_xml(SAMPLES["event_scancode_waitmsg"])
    pictures, scan = SEEN
    assert isinstance(pictures["SendPicsInfo"]["PicList"]["item"], list)
    assert pictures["SendPicsInfo"]["PicList"]["item"][0]["PicMd5Sum"]
    assert scan["ScanCodeInfo"]["ScanResult"]


def test_demo_bot_answers_every_sample_without_error(app_config):
    from app import create_app
    from app.devtools.simulator import Simulator
    from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport

    app = create_app(app_config | {"WECOM_HANDLERS": "app.handlers.demo"})
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))
    for sample, xml in SAMPLES.items():
        result = wecom.send_xml(xml)
        assert result.status == 200, sample
        message = parse_message(xml)
        if message["MsgType"] != "event":
            assert result.reply["MsgType"] == "text", sample
    app.extensions["wecom"].stop_background()
