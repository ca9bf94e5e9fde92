"""In-process cost of the protocol layer per callback (no HTTP, no store): ``timeit`` figures.

    .venv/bin/python -m bench.protocol_timeit            # microseconds per call, best of 5

Each step runs on the same signed, encrypted text callback the HTTP benchmarks send:
the envelope (``parse_envelope``), the whole opening (envelope, signature, AES:
``CallbackCrypto.decrypt_callback``), the message parse (``parse_message``), the sealing of a
passive reply (``encrypt_reply``), and the same protocol work done by wechatpy for comparison.
"""

from __future__ import annotations

import timeit
import urllib.parse
from collections.abc import Callable

from app.wecom import CallbackCrypto, parse_envelope, parse_message
from app.wecom.xmlsafe import parse_xml

from .common import AES_KEY, CORP_ID, TOKEN
from .pool import CallbackFactory

NUMBER = 2000
REPEAT = 5


def best_us(function: Callable[[], object], number: int = NUMBER) -> float:
    """Microseconds per call: the best of REPEAT runs of ``number`` calls."""
    return min(timeit.repeat(function, number=number, repeat=REPEAT)) / number * 1e6


def figures() -> dict[str, float]:
    callback = CallbackFactory().text("压测消息 timeit")
    query = dict(urllib.parse.parse_qsl(callback.target.partition("?")[2]))
    body = callback.body
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    args = (query["msg_signature"], query["timestamp"], query["nonce"])
    plain = crypto.decrypt_callback(body, *args)
    reply = "<xml><Content><![CDATA[echo]]></Content></xml>"

    def full() -> object:
        return parse_message(crypto.decrypt_callback(body, *args))

    results = {
        "parse_envelope": best_us(lambda: parse_envelope(body)),
        "envelope via the safe parser (xmltodict)": best_us(lambda: parse_xml(body)),
        "decrypt_callback (envelope + signature + AES)": best_us(
            lambda: crypto.decrypt_callback(body, *args)
        ),
        "parse_message": best_us(lambda: parse_message(plain)),
        "open a callback (decrypt_callback + parse_message)": best_us(full),
        "encrypt_reply": best_us(lambda: crypto.encrypt_reply(reply)),
    }
    results["one service log line (INFO, the service's format, to /dev/null)"] = _log_line_us()
    try:
        from wechatpy.enterprise import parse_message as wechatpy_parse
        from wechatpy.enterprise.crypto import WeChatCrypto
    except ImportError:
        return results
    peer = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    results["wechatpy: decrypt_message + parse_message"] = best_us(
        lambda: wechatpy_parse(peer.decrypt_message(body, *args))
    )
    return results


def _log_line_us() -> float:
    """One ``log.info`` with two arguments through the service's formatter, written to /dev/null."""
    import logging
    import os

    from app.web.logs import formatter

    logger = logging.getLogger("bench.timeit.logline")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(formatter())
        logger.addHandler(handler)
        try:
            return best_us(lambda: logger.info("retried callback %s (first run is %s)", "k", "x"))
        finally:
            logger.removeHandler(handler)


def main() -> int:
    for name, micros in figures().items():
        print(f"{micros:8.1f} us  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
