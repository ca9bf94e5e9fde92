"""Baseline for the benchmarks: the smallest Flask + wechatpy callback server that does the job.

It checks the signature, decrypts, parses, and answers text with an encrypted passive reply
echoing the text (what the demo bot does), like the service, but records nothing: no SQLite
dedup, no deadline greenlet, no outbox. The difference to the service is the price of those.

Run by the benchmarks from the bench/ directory (so gunicorn does not read the service's
gunicorn.conf.py)::

    cd bench && BENCH_TOKEN=... BENCH_AES_KEY=... BENCH_CORP_ID=... \
        ../.venv/bin/python -m gunicorn -k gevent -w 1 -b 127.0.0.1:8001 baseline_wechatpy:app
"""

from __future__ import annotations

import os
import secrets

from flask import Flask, Response, request
from wechatpy.enterprise import create_reply, parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import to_text

app = Flask(__name__)
crypto = WeChatCrypto(
    os.environ["BENCH_TOKEN"], os.environ["BENCH_AES_KEY"], os.environ["BENCH_CORP_ID"]
)


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status": "ok"}', mimetype="application/json")


@app.post("/")
def receive() -> Response:
    try:
        plain = crypto.decrypt_message(
            request.get_data(),
            request.args["msg_signature"],
            request.args["timestamp"],
            request.args["nonce"],
        )
    except (KeyError, InvalidSignatureException):
        return Response("bad request\n", status=400, mimetype="text/plain")
    message = parse_message(plain)
    if message.type == "text":
        answer = message.content
    elif message.type == "event":
        return Response(b"", mimetype="text/plain")
    else:
        answer = "收到消息"
    reply_xml = create_reply(answer, message).render()
    encrypted = crypto.encrypt_message(reply_xml, str(secrets.randbelow(10**10)))
    return Response(to_text(encrypted), mimetype="application/xml")
