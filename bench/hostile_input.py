"""A bounded hostile-input run: 100,000 generated requests with mutated bodies, headers, queries
and framings against the service (2 gevent workers), with correctly signed messages mixed in.

    .venv/bin/python -m bench.hostile_input                    # 100,000 requests, ~2-3 minutes
    BENCH_HOSTILE_REQUESTS=5000 .venv/bin/python -m bench.hostile_input

What must hold, and is printed (exit status 1 when it does not):

* no response with a status of 500 or more;
* no traceback in the service's log, no worker death (same worker pids, no timeout, no reboot);
* every valid message in the mix (1,000 MsgIds, each sent one to three times like WeCom's
  retries) answered 200 with its passive reply every time, and its handler run exactly once.

Each request goes on its own connection to 127.0.0.1 (``Connection: close``), so framing can be
broken freely. Everything is generated from a fixed seed (``BENCH_HOSTILE_SEED``).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import os
import random
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from app.devtools.simulator import Simulator, build_message_xml
from app.wecom import compute_signature

from .common import AES_KEY, CORP_ID, HOST, TOKEN, env_int, service_server

REQUESTS = env_int("BENCH_HOSTILE_REQUESTS", 100_000)
VALID_MESSAGES = min(1000, max(REQUESTS // 50, 10))
THREADS = env_int("BENCH_HOSTILE_THREADS", 24)
SEED = env_int("BENCH_HOSTILE_SEED", 20261129)
MAX_BODY = 16 * 1024  # WECOM_MAX_BODY for the run: the over-the-cap cases stay cheap
STALLS = 20  # requests whose body stops short: each holds a connection for 5 s


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Maker:
    """Builds the requests: raw HTTP/1.1 bytes, and for valid ones the text expected back."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sim = Simulator("http://unused/", TOKEN, AES_KEY, CORP_ID)

    def signed(self, content: str, msg_id: str) -> tuple[dict[str, str], bytes, str]:
        fields = self.sim.message_fields("text", Content=content, MsgId=msg_id)
        encrypted = self.sim.crypto.encrypt(build_message_xml(fields))
        body = (
            f"<xml><ToUserName>{CORP_ID}</ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )
        return self.sim._signed_query(encrypted), body.encode(), encrypted

    @staticmethod
    def http(
        method: str,
        target: str,
        body: bytes | None,
        headers: list[tuple[str, str]] | None = None,
        framing: str = "length",
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
        for name, value in headers or [("Content-Type", "text/xml")]:
            lines.append(f"{name}: {value}")
        payload = b""
        if body is not None:
            if framing == "length":
                lines.append(f"Content-Length: {len(body)}")
                payload = body
            elif framing == "chunked":
                lines.append("Transfer-Encoding: chunked")
                step = 1000
                payload = (
                    b"".join(
                        b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
                        for i in range(0, len(body), step)
                    )
                    + b"0\r\n\r\n"
                )
            elif framing == "bad-chunks":
                lines.append("Transfer-Encoding: chunked")
                payload = b"zz\r\n" + body[:10] + b"\r\n0\r\n\r\n"
            elif framing == "both":
                lines.append("Transfer-Encoding: chunked")
                lines.append(f"Content-Length: {len(body)}")
                payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            elif framing == "short":  # Content-Length larger than the body: a stall
                lines.append(f"Content-Length: {len(body) + 100}")
                payload = body
            elif framing == "long":  # more bytes than Content-Length says
                lines.append(f"Content-Length: {max(len(body) - 7, 0)}")
                payload = body
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
        return head + payload

    # -- the mutations ---------------------------------------------------------------------
    def mutated(self) -> bytes:
        rng = self.rng
        query, body, encrypted = self.signed("变异 " + str(rng.random()), str(rng.getrandbits(62)))
        kind = rng.randrange(12)
        method, path, headers, framing = "POST", "/", None, "length"
        if kind == 0:  # flipped bytes
            data = bytearray(body)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            body = bytes(data)
        elif kind == 1:  # truncated or padded
            body = body[: rng.randrange(len(body))] if rng.random() < 0.5 else body + os.urandom(64)
        elif kind == 2:  # another ciphertext, signed or not
            fake = base64.b64encode(os.urandom(rng.choice([16, 32, 48, 33]))).decode()
            body = f"<xml><Encrypt>{fake}</Encrypt></xml>".encode()
            if rng.random() < 0.5:
                query = dict(
                    query,
                    msg_signature=compute_signature(
                        TOKEN, query["timestamp"], query["nonce"], fake
                    ),
                )
        elif kind == 3:  # XML attacks
            body = rng.choice(
                [
                    b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
                    b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>",
                    b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
                    b"<xml><Encrypt><x>1</x></Encrypt></xml>",
                    b"\xff\xfe<\x00x\x00",
                ]
            )
        elif kind == 4:  # JSON attacks
            depth = rng.choice([10, 1000, 5000])
            body = rng.choice(
                [
                    b'{"encrypt": ' + b"[" * depth + b"]" * depth + b"}",
                    b'{"encrypt": 12}',
                    b'{"encrypt": "' + encrypted.encode() + b'", "Encrypt": "x"}',
                    b"[1, 2, 3]",
                    b'{"encrypt": "\\ud800"}',
                ]
            )
        elif kind == 5:  # query mutations
            choice = rng.randrange(6)
            if choice == 0:
                query.pop(rng.choice(list(query)))
            elif choice == 1:
                query["timestamp"] = rng.choice(
                    ["0", "abc", "9" * 30, "-1", "1.5", str(int(time.time()) - 7200)]
                )
            elif choice == 2:
                query["nonce"] = "x" * rng.choice([0, 10_000])
            elif choice == 3:
                query["msg_signature"] = query["msg_signature"].upper()
            elif choice == 4:
                query = {k: v + "\x00é%" for k, v in query.items()}
            else:
                query["extra"] = "a" * 2000
        elif kind == 6:  # framing
            framing = rng.choice(["chunked", "bad-chunks", "both", "long"])
        elif kind == 7:  # over the size cap, either framing
            body = body + b" " * (MAX_BODY + 10)
            framing = rng.choice(["length", "chunked"])
        elif kind == 8:  # headers
            headers = rng.choice(
                [
                    [("Content-Type", "application/json")],
                    [("Content-Type", "text/xml")] * 2 + [("X-Long", "b" * 6000)],
                    [(f"X-{i}", "y") for i in range(60)],
                    [("Expect", "100-continue"), ("Content-Type", "text/xml")],
                    [("Content-Encoding", "gzip")],
                ]
            )
        elif kind == 9:  # methods and paths
            method = rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "get", "HEAD", "POST"])
            path = rng.choice(["/", "/healthz", "/nowhere", "//", "/%00", "/kf", "/" + "p" * 3000])
        elif kind == 10:  # verification GETs gone wrong
            method, body = "GET", None
            query = dict(query, echostr=rng.choice([encrypted, "", "!!!", encrypted[:-4]]))
        else:  # empty or junk body
            body = rng.choice([b"", os.urandom(rng.randrange(1, 2000)), b"\x00" * 100])
        return self.http(method, path + "?" + urlencode(query), body, headers, framing)

    def stall(self) -> bytes:
        query, body, _ = self.signed("stall", str(self.rng.getrandbits(62)))
        return self.http("POST", "/?" + urlencode(query), body, framing="short")


def exchange(port: int, request: bytes, timeout: float = 20.0) -> tuple[int | None, bytes]:
    """Send one request on its own connection; (status or None, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may refuse early (413 before the body)
            sock.sendall(request)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError:
            pass
    data = b"".join(chunks)
    while data.startswith(b"HTTP/1.1 100"):  # Expect: 100-continue; the final answer follows
        data = data.partition(b"\r\n\r\n")[2]
    if not data.startswith(b"HTTP/"):
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return None, b""


def main() -> int:
    rng = random.Random(SEED)
    maker = Maker(rng)
    with tempfile.TemporaryDirectory() as workdir:
        record = Path(workdir) / "runs.txt"
        server = service_server(
            "hostile",
            "gevent",
            Path(workdir) / "state.db",
            workers=2,
            extra_env={
                "WECOM_HANDLERS": "bench.recording_handlers",
                "BENCH_RECORD": str(record),
                "WECOM_MAX_BODY": str(MAX_BODY),
            },
        )
        with server:
            pids_before = sorted(worker_pids(server.process.pid))
            statuses: collections.Counter[str] = collections.Counter()
            valid_failures: list[str] = []
            lock = threading.Lock()
            sends = [(f"{7_000_000 + i}", f"合法消息 {i}") for i in range(VALID_MESSAGES)]
            plan: list[tuple[str, object]] = [
                ("valid", s) for s in sends for _ in range(rng.randint(1, 3))
            ]
            plan += [("stall", None)] * STALLS
            plan += [("mutated", None)] * (REQUESTS - len(plan))
            rng.shuffle(plan)
            progress(f"{len(plan)} requests, {VALID_MESSAGES} valid MsgIds, {THREADS} threads")

            def one(item: tuple[str, object]) -> None:
                kind, valid = item
                if kind == "valid":
                    msg_id, content = valid  # type: ignore[misc]
                    query, body, _ = maker.signed(content, msg_id)
                    status, answer = exchange(
                        server.port, maker.http("POST", "/?" + urlencode(query), body)
                    )
                    ok = False
                    if status == 200:
                        try:
                            reply = maker.sim.open_reply(answer)
                            ok = bool(reply) and reply.get("Content") == content
                        except Exception:
                            ok = False
                    if not ok:
                        with lock:
                            valid_failures.append(f"{msg_id}: {status}")
                else:
                    with lock:
                        request = maker.mutated() if kind == "mutated" else maker.stall()
                    status, _ = exchange(server.port, request)
                with lock:
                    statuses[str(status)] += 1

            started = time.monotonic()
            with ThreadPoolExecutor(THREADS) as pool:
                for index, _ in enumerate(pool.map(one, plan), 1):
                    if index % 10_000 == 0:
                        progress(f"{index} done, {time.monotonic() - started:.0f} s")
            took = time.monotonic() - started
            time.sleep(1)
            output = server.output()
            pids_after = sorted(worker_pids(server.process.pid))
        runs = (
            collections.Counter(line.split()[0] for line in record.read_text().splitlines())
            if record.exists()
            else collections.Counter()
        )
    server_errors = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    wrong_runs = {m: runs.get(m, 0) for m, _ in sends if runs.get(m, 0) != 1}
    report = {
        "requests": len(plan),
        "seconds": round(took, 1),
        "statuses": dict(sorted(statuses.items())),
        "responses >= 500": server_errors,
        "tracebacks": output.count("Traceback"),
        "worker timeouts or reboots": output.count("WORKER TIMEOUT")
        + output.count("Booting worker")
        - len(pids_before),
        "same workers": pids_before == pids_after,
        "valid MsgIds": len(sends),
        "valid deliveries not answered right": len(valid_failures),
        "MsgIds not run exactly once": len(wrong_runs),
    }
    for key, value in report.items():
        print(f"{key}: {value}")
    passed = (
        server_errors == 0
        and report["tracebacks"] == 0
        and report["worker timeouts or reboots"] == 0
        and report["same workers"]
        and not valid_failures
        and not wrong_runs
    )
    print("PASS" if passed else "FAIL", flush=True)
    if not passed:
        print(f"first failures: {valid_failures[:5]} {list(wrong_runs.items())[:5]}")
        at = output.find("Traceback")
        if at >= 0:
            print(output[max(at - 300, 0) : at + 2500])
    return 0 if passed else 1


def worker_pids(master: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(entry.name))
    return children


if __name__ == "__main__":
    sys.exit(main())
