"""The correctness sampler: passive replies kept by wrk (bench/wrk_callbacks.lua) are opened and
checked against the callbacks that were sent.

A sampled reply counts as correct when its signature verifies and it decrypts (with wechatpy's
implementation, independent of the service's, when it is installed), when it is a text addressed
to the member who wrote, from the app, and when its Content is that member's own text (all three
servers echo the text). A text seen twice in the samples is a callback answered twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.wecom import CallbackCrypto, parse_message
from app.wecom.xmlsafe import parse_xml

from .common import AES_KEY, CORP_ID, TOKEN


@dataclass
class SampleCheck:
    checked: int = 0
    correct: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    def add(self, other: SampleCheck) -> None:
        self.checked += other.checked
        self.correct += other.correct
        self.problems.update(other.problems)

    @property
    def share(self) -> float:
        return self.correct / self.checked if self.checked else float("nan")

    def describe(self) -> str:
        if not self.checked:
            return "no replies sampled"
        text = f"{self.correct}/{self.checked} sampled replies correct ({self.share:.0%})"
        if self.problems:
            text += ": " + ", ".join(f"{n} {what}" for what, n in self.problems.most_common(3))
        return text


def _opener() -> Callable[[bytes], dict[str, Any]]:
    """Reply body → decrypted message fields; raises on a bad signature or ciphertext."""
    try:
        from wechatpy.enterprise.crypto import WeChatCrypto
    except ImportError:
        crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)

        def ours(body: bytes) -> dict[str, Any]:
            envelope = parse_xml(body)
            plain = crypto.decrypt_callback(
                body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )
            return parse_message(plain)

        return ours
    peer = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)

    def wechatpy(body: bytes) -> dict[str, Any]:
        envelope = parse_xml(body)
        plain = peer.decrypt_message(
            body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
        )
        return parse_message(plain)

    return wechatpy


def read_samples(path: Path) -> list[bytes]:
    """The bodies in one sample file: ``<length>\\n<body>`` after one another."""
    data = path.read_bytes() if path.exists() else b""
    bodies, at = [], 0
    while at < len(data):
        newline = data.index(b"\n", at)
        length = int(data[at:newline])
        bodies.append(data[newline + 1 : newline + 1 + length])
        at = newline + 1 + length
    return bodies


def check_replies(bodies: Iterable[bytes], expected: dict[str, str]) -> SampleCheck:
    """``expected`` maps each text sent to the member who sent it."""
    open_reply = _opener()
    result = SampleCheck()
    seen: Counter[str] = Counter()
    for body in bodies:
        result.checked += 1
        try:
            reply = open_reply(body)
        except Exception as exc:  # any failure to open is a wrong answer, counted by kind
            result.problems[f"unopenable ({type(exc).__name__})"] += 1
            continue
        content = str(reply.get("Content", ""))
        seen[content] += 1
        if content not in expected:
            result.problems["unknown Content"] += 1
        elif reply.get("ToUserName") != expected[content]:
            result.problems["wrong ToUserName"] += 1
        elif reply.get("FromUserName") != CORP_ID or reply.get("MsgType") != "text":
            result.problems["wrong FromUserName or MsgType"] += 1
        elif seen[content] > 1:
            result.problems["answered twice"] += 1
        else:
            result.correct += 1
    return result


def check_files(prefix: Path, expected: dict[str, str]) -> SampleCheck:
    """Check every ``<prefix>.<thread>`` file wrk wrote, then delete them."""
    bodies: list[bytes] = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        bodies.extend(read_samples(path))
        path.unlink()
    return check_replies(bodies, expected)
