import json
import logging

import pytest

from app import SettingError, create_app
from app.web.startup import summary
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN


def build(**overrides):
    config = dict(BASE_CONFIG)
    config.update(overrides)
    return create_app(config)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"WECOM_AES_KEY": "short"}, "WECOM_AES_KEY"),
        ({"WECOM_AES_KEY": AES_KEY[:-1] + "!"}, "WECOM_AES_KEY"),
        ({"WECOM_TOKEN": ""}, "WECOM_TOKEN"),
        ({"WECOM_TOKEN": "has space"}, "WECOM_TOKEN"),
        ({"WECOM_TOKEN": "x" * 33}, "WECOM_TOKEN"),
        ({"WECOM_CORP_ID": ""}, "WECOM_CORP_ID"),
        ({"WECOM_PATH": "no-slash"}, "WECOM_PATH"),
        ({"WECOM_MAX_BODY": "lots"}, "WECOM_MAX_BODY"),
        ({"WECOM_MAX_BODY": "10"}, "WECOM_MAX_BODY"),
        ({"WECOM_REPLY_DEADLINE": "6"}, "WECOM_REPLY_DEADLINE"),
        ({"WECOM_AGENT_ID": "abc"}, "WECOM_AGENT_ID"),
        ({"WECOM_ENDPOINTS": "{not json"}, "WECOM_ENDPOINTS"),
        (
            {"WECOM_ENDPOINTS": json.dumps([{"name": "b", "token": "t"}])},
            "WECOM_ENDPOINTS[0].aes_key",
        ),
        ({"WECOM_KF_TOKEN": "kf", "WECOM_KF_AES_KEY": "bad"}, "WECOM_KF_AES_KEY"),
        ({"WECOM_LOG_LEVEL": "LOUD"}, "WECOM_LOG_LEVEL"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(overrides, setting):
    with pytest.raises(SettingError) as info:
        build(**overrides)
    assert info.value.setting == setting
    assert str(info.value).startswith(setting + ":")


def test_environment_and_guide_aliases(monkeypatch):
    monkeypatch.setenv("T_TOKEN", TOKEN)
    monkeypatch.setenv("C_TOKEN", CORP_ID)
    monkeypatch.setenv("WECOM_AES_KEY", AES_KEY)
    monkeypatch.setenv("WECOM_STORE", "memory://")
    app = create_app()
    endpoint = app.extensions["wecom"].endpoints["app"]
    assert endpoint.settings.token == TOKEN
    assert endpoint.receive_id == CORP_ID
    assert not app.extensions["wecom"].dev_profile


def test_explicit_mapping_wins_over_environment(monkeypatch):
    monkeypatch.setenv("WECOM_TOKEN", "fromenv")
    app = build(WECOM_TOKEN="frommapping")
    assert app.extensions["wecom"].endpoints["app"].settings.token == "frommapping"


def test_nothing_configured_starts_the_labelled_development_profile():
    app = create_app({"WECOM_STORE": "memory://"})
    service = app.extensions["wecom"]
    assert service.dev_profile
    warnings = [line for level, line in summary(service.settings) if level == logging.WARNING]
    assert any(line.startswith("DEVELOPMENT PROFILE") for line in warnings)
    response = app.test_client().get("/healthz")
    assert response.json["development_profile"] is True


def test_several_endpoints_each_with_own_keys():
    other_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    app = build(
        WECOM_ENDPOINTS=json.dumps(
            [{"name": "second", "path": "/second", "token": "tok2", "aes_key": other_key}]
        ),
        WECOM_KF_TOKEN="kftoken",
        WECOM_KF_AES_KEY=other_key,
    )
    endpoints = app.extensions["wecom"].endpoints
    assert set(endpoints) == {"app", "kf", "second"}
    assert endpoints["second"].settings.path == "/second"
    assert endpoints["second"].receive_id == CORP_ID
    assert endpoints["kf"].settings.path == "/kf"
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/", "/kf", "/second", "/healthz"} <= rules


def test_endpoint_names_must_be_unique():
    other_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    endpoints = [{"name": "app", "path": "/x", "token": "tok2", "aes_key": other_key}]
    with pytest.raises(SettingError, match="unique"):
        build(WECOM_ENDPOINTS=json.dumps(endpoints))


def test_two_endpoints_on_one_path_are_refused():
    with pytest.raises(SettingError, match="share path"):
        build(WECOM_KF_TOKEN="kftoken", WECOM_KF_AES_KEY=AES_KEY, WECOM_KF_PATH="/")
