"""Reference for the benchmarks: FastAPI (async) with the official ``WXBizMsgCrypt`` API.

What WeCom's own Python guide leads to: the callback class with its ``(ret, value)`` results
(here :class:`app.wecom.WXBizMsgCrypt`, which keeps that API), ElementTree for the decrypted
message, a passive reply echoing the text. Like the Flask + wechatpy baseline it records
nothing: no dedup of retries, no durability, no deadline.

Run by the benchmarks from bench/ under uvicorn, one process::

    cd bench && PYTHONPATH=.. BENCH_TOKEN=... BENCH_AES_KEY=... BENCH_CORP_ID=... \\
        ../.venv/bin/python -m uvicorn reference_fastapi:app --host 127.0.0.1 --port 8002
"""

from __future__ import annotations

import os
import secrets
import time
import xml.etree.ElementTree as ET

from fastapi import FastAPI, Request, Response

from app.wecom import WXBizMsgCrypt

app = FastAPI()
crypt = WXBizMsgCrypt(
    os.environ["BENCH_TOKEN"], os.environ["BENCH_AES_KEY"], os.environ["BENCH_CORP_ID"]
)

REPLY = (
    "<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
    "<FromUserName><![CDATA[{me}]]></FromUserName>"
    "<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content></xml>"
)


@app.get("/healthz")
async def healthz() -> Response:
    return Response('{"status": "ok"}', media_type="application/json")


@app.post("/")
async def receive(request: Request, msg_signature: str, timestamp: str, nonce: str) -> Response:
    body = await request.body()
    ret, plain = crypt.DecryptMsg(body, msg_signature, timestamp, nonce)
    if ret != 0 or plain is None:
        return Response("bad request\n", status_code=400, media_type="text/plain")
    message = ET.fromstring(plain)
    if message.findtext("MsgType") != "text":
        return Response(b"", media_type="text/plain")
    reply = REPLY.format(
        to=message.findtext("FromUserName"),
        me=message.findtext("ToUserName"),
        now=int(time.time()),
        content=message.findtext("Content") or "",
    )
    ret, encrypted = crypt.EncryptMsg(reply, str(secrets.randbelow(10**10)))
    if ret != 0 or encrypted is None:
        return Response("cannot encrypt\n", status_code=500, media_type="text/plain")
    return Response(encrypted, media_type="application/xml")
