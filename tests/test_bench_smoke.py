"""The benchmark's own parts, without running a benchmark: its modules import, the callbacks it
sends are valid signed, encrypted WeCom callbacks, and its correctness sampler tells a right
reply from a wrong one."""

from __future__ import annotations

import importlib
import io
import logging
import os
import time
import urllib.parse
from pathlib import Path

import pytest

from app.wecom import CallbackCrypto, parse_message
from bench.common import AES_KEY, CORP_ID, TOKEN
from bench.pool import CallbackFactory, write_wrk_pool
from bench.sampler import check_files, check_replies, read_samples
from bench.service_records import callback_lines

MODULES = [
    "bench.common",
    "bench.pool",
    "bench.loadgen",
    "bench.wrkrun",
    "bench.sampler",
    "bench.plain_callbacks",
    "bench.slow_callbacks",
    "bench.memory",
    "bench.fake_wecom",
    "bench.slow_report",
    "bench.workers",
    "bench.service_records",
    "bench.profile",
    "bench.protocol_timeit",
    "bench.store_group_commit",
    "bench.worker_scaling",
    "bench.echo_handlers",
    "bench.run",
]


@pytest.mark.parametrize("name", MODULES)
def test_bench_modules_import(name: str) -> None:
    importlib.import_module(name)


def test_the_fastapi_reference_imports_when_fastapi_is_installed(monkeypatch) -> None:
    pytest.importorskip("fastapi")
    monkeypatch.setenv("BENCH_TOKEN", TOKEN)
    monkeypatch.setenv("BENCH_AES_KEY", AES_KEY)
    monkeypatch.setenv("BENCH_CORP_ID", CORP_ID)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    importlib.import_module("reference_fastapi")


def _open(target: str, body: bytes) -> dict:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    plain = crypto.decrypt_callback(
        body, query["msg_signature"], query["timestamp"], query["nonce"]
    )
    return parse_message(plain)


def test_generated_callbacks_are_distinct_valid_signed_envelopes(tmp_path: Path) -> None:
    callbacks = list(CallbackFactory().texts(20, users=3, tag="smoke-"))
    assert len({c.msg_id for c in callbacks}) == 20
    for callback in callbacks:
        message = _open(callback.target, callback.body)
        assert message["MsgType"] == "text"
        assert message["MsgId"] == callback.msg_id
        assert message["Content"] == callback.content
        assert message["FromUserName"] == callback.from_user
        assert message["ToUserName"] == CORP_ID
    pool = tmp_path / "pool.txt"
    assert write_wrk_pool(pool, iter(callbacks)) == 20
    lines = pool.read_bytes().splitlines()
    target, _, body = lines[7].partition(b" ")
    assert _open(target.decode(), body)["MsgId"] == callbacks[7].msg_id


def test_the_sampler_accepts_an_echo_and_flags_a_wrong_reply(tmp_path: Path) -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)

    def reply(to: str, content: str) -> bytes:
        plain = (
            f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
            f"<FromUserName><![CDATA[{CORP_ID}]]></FromUserName><CreateTime>1</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content></xml>"
        )
        return crypto.encrypt_reply(plain).encode()

    expected = {"压测消息 1": "alice", "压测消息 2": "bob"}
    good = reply("alice", "压测消息 1")
    result = check_replies(
        [good, reply("alice", "压测消息 2"), reply("bob", "other"), b"<xml/>", good], expected
    )
    assert (result.checked, result.correct) == (5, 1)
    assert set(result.problems) == {
        "wrong ToUserName",
        "unknown Content",
        "unopenable (KeyError)",
        "answered twice",
    }
    # The file format wrk_callbacks.lua writes: the length on a line, then the body.
    sample = tmp_path / "sample"
    (tmp_path / "sample.0").write_bytes(b"%d\n%s" % (len(good), good))
    assert read_samples(tmp_path / "sample.0") == [good]
    assert check_files(sample, expected).correct == 1
    assert not (tmp_path / "sample.0").exists()


def test_scenario_b_reads_the_line_the_service_logs_per_callback() -> None:
    """bench/service_records.py parses the real line of app/web/callback_log.py, as the service
    formats it (app/web/logs.py), so a change of either shows here rather than as a figure
    silently missing from scenario B."""
    from flask import Flask

    from app.infra.metrics import CallbackNote
    from app.web.callback_log import finish
    from app.web.logs import formatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("text"))
    logger = logging.getLogger("app.callbacks")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    note = CallbackNote("app", "app", received_at=time.monotonic() - 4.25)
    note.msgtype, note.ident, note.outcome = "text", "MsgId=7000000000000000001", "deferred"
    try:
        with Flask(__name__).test_request_context("/"):
            finish(note, 200)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    line = callback_lines(out.getvalue())["7000000000000000001"]
    assert (line.pid, line.outcome) == (os.getpid(), "deferred")
    assert line.seconds >= 4.25
