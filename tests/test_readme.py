"""The README's handler examples, run as written: copied out of README.md into a module."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from app import create_app
from app.devtools.simulator import Simulator
from app.routing import KfRouter
from app.routing.loading import load_router
from tests.conftest import AES_KEY, BASE_CONFIG, CORP_ID, TOKEN, client_transport

README = Path(__file__).resolve().parent.parent / "README.md"


def example(first_line: str) -> str:
    """The ```python block of the README whose first line starts with ``first_line``."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no python example starting with {first_line!r}")


@pytest.fixture
def mybot(tmp_path, monkeypatch):
    """A package ``mybot`` on sys.path holding the README's handler modules."""
    package = tmp_path / "mybot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handlers.py").write_text(example("# mybot/handlers.py"), encoding="utf-8")
    (package / "kf.py").write_text(example("# mybot/kf.py"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [name for name in sys.modules if name == "mybot" or name.startswith("mybot.")]:
        del sys.modules[name]


def test_the_app_handler_example_answers_as_documented(mybot):
    app = create_app(BASE_CONFIG | {"WECOM_HANDLERS": "mybot.handlers"})
    wecom = Simulator("/", TOKEN, AES_KEY, CORP_ID, transport=client_transport(app.test_client()))
    try:
        assert wecom.send_text("你好").reply["Content"] == "你好！"
        assert wecom.send_text("订单 42").reply["Content"] == "订单 42：已发货"
        news = wecom.send_event("click", EventKey="MENU_NEWS").reply
        assert news["MsgType"] == "news"
        assert news["Articles"]["item"][0]["Title"] == "标题"
        assert wecom.send_event("subscribe").reply["Content"] == "欢迎"
        image = wecom.send_fields(wecom.message_fields("image", MediaId="m1", PicUrl="http://x"))
        assert image.reply["MsgType"] == "image"
        assert image.reply["Image"]["MediaId"] == "m1"
        # Another app's message passes on (NEXT) to the default, which answers nothing.
        other = wecom.send_fields(wecom.message_fields("text", Content="?", AgentID="1000003"))
        assert (other.status, other.reply) == (200, None)
    finally:
        app.extensions["wecom"].stop_background()


def test_the_kf_handler_example_answers_as_documented(mybot):
    router = load_router("mybot.kf", KfRouter)

    def customer(**fields):
        return {"origin": 3, "msgtype": "text", "external_userid": "wm1"} | fields

    menu = router.dispatch(customer(text={"content": "人工"}))
    assert [item.id for item in menu.items] == ["sales", "after"]
    link = router.dispatch(customer(text={"content": "售后", "menu_id": "after"}))
    assert link.url == "https://example.com/after"
    order = router.dispatch(customer(text={"content": "订单 7"}))
    assert order.content == "订单 7：已发货"
    assert router.dispatch(customer(msgtype="image", image={"media_id": "M"})) == "收到"
    recall = {"origin": 4, "msgtype": "event", "event": {"event_type": "user_recall_msg"}}
    assert router.dispatch(recall) is None
