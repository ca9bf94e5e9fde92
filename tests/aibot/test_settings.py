"""Bot and LLM settings: a bad value stops start-up naming the setting; bot-only services."""

from __future__ import annotations

import json

import pytest

from app import SettingError, create_app
from app.settings.bots import bot_settings
from tests.aibot.conftest import BOT_AES_KEY, BOT_TOKEN
from tests.conftest import BASE_CONFIG

BOT = {"WECOM_STORE": "memory://", "WECOM_BOT_TOKEN": BOT_TOKEN, "WECOM_BOT_AES_KEY": BOT_AES_KEY}


def aibot_entry(**fields) -> str:
    entry = {"name": "helper", "kind": "aibot", "token": "Tok2", "aes_key": BOT_AES_KEY, **fields}
    return json.dumps([entry])


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({"WECOM_BOT_TOKEN": "bad token"}, "WECOM_BOT_TOKEN"),
        ({"WECOM_BOT_AES_KEY": "short"}, "WECOM_BOT_AES_KEY"),
        ({"WECOM_BOT_PATH": "bot"}, "WECOM_BOT_PATH"),
        ({"WECOM_BOT_PATH": "/"}, "WECOM_BOT_PATH"),  # the app's own path
        ({"WECOM_ENDPOINTS": aibot_entry(receive_id="wwcorp")}, "WECOM_ENDPOINTS[0].receive_id"),
        ({"WECOM_ENDPOINTS": aibot_entry(agent_id="1")}, "WECOM_ENDPOINTS[0]"),
        ({"WECOM_ENDPOINTS": aibot_entry(name="bot")}, "WECOM_ENDPOINTS"),
        ({"WECOM_LLM_BASE_URL": "ftp://x"}, "WECOM_LLM_BASE_URL"),
        ({"WECOM_LLM_BASE_URL": "http://127.0.0.1:1/v1"}, "WECOM_LLM_MODEL"),
        ({"WECOM_LLM_HISTORY": "-1"}, "WECOM_LLM_HISTORY"),
        ({"WECOM_LLM_TIMEOUT": "abc"}, "WECOM_LLM_TIMEOUT"),
        ({"WECOM_BOT_STREAM_WINDOW": "400"}, "WECOM_BOT_STREAM_WINDOW"),
    ],
)
def test_bad_settings_name_themselves(config: dict, setting: str) -> None:
    with pytest.raises(SettingError) as caught:
        create_app({**BASE_CONFIG, **BOT, **config})
    assert caught.value.setting == setting


def test_a_bad_api_key_is_not_echoed() -> None:
    with pytest.raises(SettingError) as caught:
        create_app(
            {
                **BOT,
                "WECOM_LLM_BASE_URL": "http://h/v1",
                "WECOM_LLM_MODEL": "m",
                "WECOM_LLM_API_KEY": "sk-secret value",
            }
        )
    assert "sk-secret" not in str(caught.value)


def test_a_bot_alone_is_a_service_and_several_bots_fit() -> None:
    app = create_app({**BOT, "WECOM_ENDPOINTS": aibot_entry(path="/helper", welcome="hi")})
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/bot", "/helper"} <= rules and "/" not in rules
    assert not app.extensions["wecom"].dev_profile
    bots = app.extensions["wecom_bot"].bots
    assert [bots["helper"].settings.welcome, bots["bot"].settings.path] == ["hi", "/bot"]
    assert app.test_client().get("/healthz").json["endpoints"] == ["bot", "helper"]


def test_the_development_profile_mounts_a_bot() -> None:
    app = create_app({"WECOM_STORE": "memory://"})
    assert "/bot" in {rule.rule for rule in app.url_map.iter_rules()}


def test_secrets_stay_out_of_reprs() -> None:
    settings = bot_settings(
        {
            **BOT,
            "WECOM_LLM_BASE_URL": "http://h/v1/",
            "WECOM_LLM_MODEL": "m",
            "WECOM_LLM_API_KEY": "sk-abc",
            "WECOM_LLM_HISTORY": 10,
            "WECOM_LLM_TIMEOUT": 5,
            "WECOM_BOT_STREAM_WINDOW": 330,
        }
    )
    assert settings.llm.base_url == "http://h/v1"
    assert (
        "sk-abc" not in repr(settings)
        and BOT_TOKEN not in repr(settings)
        and BOT_AES_KEY not in repr(settings)
    )
