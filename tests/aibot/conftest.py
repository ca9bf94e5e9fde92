"""An app with an intelligent bot at /bot (the test handlers), WeCom acting on it through the
test client, and WeCom's end of response_url."""

from __future__ import annotations

import pytest

from app import create_app
from app.devtools.bot_simulator import BotSimulator, ResponseCatcher
from tests.aibot import handlers_bot
from tests.conftest import AES_KEY, CORP_ID, TOKEN, client_transport

BOT_TOKEN = "B0tToken"
BOT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def catcher():
    with ResponseCatcher() as server:
        yield server


@pytest.fixture
def bot_config(catcher) -> dict:
    return {
        "TESTING": True,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_STORE": "memory://",
        "WECOM_BOT_TOKEN": BOT_TOKEN,
        "WECOM_BOT_AES_KEY": BOT_AES_KEY,
        "WECOM_BOT_HANDLERS": "tests.aibot.handlers_bot",
        "WECOM_BOT_WELCOME": "欢迎",
    }


@pytest.fixture
def bot_app(bot_config):
    handlers_bot.GATES.clear()
    handlers_bot.CALLS.clear()
    app = create_app(bot_config)
    yield app
    for gate in list(handlers_bot.GATES.values()):
        gate.set()  # let every waiting generator end
    app.extensions["wecom"].stop_background()
    app.extensions["wecom_bot"].stop()


@pytest.fixture
def bot(bot_app, catcher) -> BotSimulator:
    transport = client_transport(bot_app.test_client())
    return BotSimulator(
        "/bot", BOT_TOKEN, BOT_AES_KEY, transport=transport, response_url=catcher.url
    )
