"""gunicorn stops at once on SIGTERM however many idle keep-alive clients it has, and still lets
the requests in flight finish (app/web/gunicorn_worker.py); also behind nginx's keepalive pool.

Why a time bound here, when tests elsewhere assert none: the stop time is the behaviour itself.
gunicorn's own gevent workers wait for every open connection, idle or not, until
``graceful_timeout`` (20 s, set explicitly below) and then kill what is left. The requirement is
a stop within 2 s; on an idle machine it takes about 0.4 s. So a stop under 2 s passes with a
wide margin, and the behaviour it guards against (20 s) cannot pass by luck.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.devtools.simulator import Simulator
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService, free_port
from tests.helpers import GATES_VARIABLE, Gates, wait_for

pytestmark = pytest.mark.e2e

STOP_BOUND = 2.0
KEYS = {
    "WECOM_TOKEN": TOKEN,
    "WECOM_AES_KEY": AES_KEY,
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_STORE": "memory://",
    "GUNICORN_GRACEFUL_TIMEOUT": "20",
}


def idle_keep_alive_client(live: LiveService) -> http.client.HTTPConnection:
    """A connection that made one request and stays open, as a browser's or a pool's does."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert response.status == 200 and not response.will_close
    return connection


def hung_up(connection: http.client.HTTPConnection) -> bool:
    """The server closed this idle connection (the client reads end of stream)."""
    assert connection.sock is not None
    connection.sock.settimeout(10)
    try:
        return connection.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def open_connections(port: int) -> int:
    """Established TCP connections whose server side is ``port``, from /proc/net/tcp."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
            count += 1
    return count


def stop_time(live: LiveService) -> float:
    """SIGTERM the arbiter as a supervisor would; seconds until every process has exited."""
    assert live.process is not None
    started = time.monotonic()
    os.killpg(live.process.pid, signal.SIGTERM)
    live.process.wait(60)
    return time.monotonic() - started


def test_idle_keep_alive_clients_do_not_hold_up_the_stop():
    with LiveService(KEYS, workers=2) as live:
        clients = [idle_keep_alive_client(live) for _ in range(8)]
        assert open_connections(live.port) >= 8
        took = stop_time(live)
        assert all(hung_up(client) for client in clients)
        output = live.output()
    for client in clients:
        client.close()
    assert took < STOP_BOUND, f"stop took {took:.2f} s with idle keep-alive clients"
    assert "graceful timeout" not in output
    assert live.process.returncode == 0


def test_request_in_flight_finishes_while_idle_clients_are_let_go(tmp_path):
    """SIGTERM while a handler runs (it holds at a gate) and idle clients wait: the idle ones
    are hung up at once, the service keeps running for the request in flight, which then gets
    its answer with ``Connection: close``; then the service exits."""
    gates = Gates(tmp_path / "gates")
    record = tmp_path / "runs.txt"
    env = KEYS | {
        "WECOM_HANDLERS": "tests.handlers_slow",
        "WECOM_REPLY_DEADLINE": "4.9",
        "WECOM_TEST_RECORD": str(record),
        GATES_VARIABLE: str(gates.folder),
    }
    headers: list[http.client.HTTPMessage] = []

    def transport(method: str, url: str, query: dict[str, str], body: bytes | None):
        response = requests.request(method, url, params=query, data=body, timeout=30)
        headers.append(response.raw.headers)
        return response.status_code, response.content

    with LiveService(env, workers=1) as live:
        wecom = Simulator(live.url + "/", TOKEN, AES_KEY, CORP_ID, transport=transport)
        clients = [idle_keep_alive_client(live) for _ in range(4)]
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(wecom.send_text, "hold s1", MsgId="501")
            wait_for(lambda: record.exists() and "501" in record.read_text())
            assert live.process is not None
            os.killpg(live.process.pid, signal.SIGTERM)
            assert all(hung_up(client) for client in clients)
            assert live.process.poll() is None  # still serving the request in flight
            gates.open("s1")
            result = in_flight.result(timeout=30)
        live.process.wait(30)
        assert live.process.returncode == 0
        output = live.output()
    for client in clients:
        client.close()
    assert result.status == 200
    # Passive unless the machine was so slow that the 4.9 s budget ran out: either way the
    # request was answered, not cut off.
    assert result.reply is None or result.reply["Content"] == "released s1"
    assert headers[0].get("Connection", "").lower() == "close"
    assert "graceful timeout" not in output


# -- behind nginx --------------------------------------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # As deploy/nginx.conf: a pool of idle keep-alive connections to the service.
    upstream wecom_callback {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://wecom_callback;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
        }}
    }}
}}
"""


def start_nginx(folder: Path, upstream: int) -> tuple[subprocess.Popen, str]:
    """nginx in front of ``upstream``; it binds its own port, so start again if that was taken."""
    assert NGINX is not None
    for _ in range(3):
        port = free_port()
        config = folder / "nginx.conf"
        config.write_text(NGINX_CONF.format(dir=folder, upstream=upstream, port=port))
        nginx = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: nginx.poll() is not None or _answers(url), timeout=15)  # noqa: B023
        if nginx.poll() is None:
            return nginx, url
        if "Address already in use" not in (folder / "error.log").read_text():
            break
    raise RuntimeError("nginx did not start:\n" + (folder / "error.log").read_text())


@pytest.fixture
def nginx_in_front(tmp_path) -> Iterator[tuple[LiveService, str]]:
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/test.sh installs it)")
    with LiveService(KEYS, workers=2) as live:
        nginx, url = start_nginx(tmp_path, live.port)
        try:
            yield live, url
        finally:
            nginx.terminate()
            nginx.wait(10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_stop_behind_nginx_keepalive_pool(nginx_in_front):
    live, url = nginx_in_front

    def one(_: int) -> int:
        response = requests.get(url + "/healthz", headers={"Connection": "close"}, timeout=10)
        return response.status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(64))) == {200}
    # nginx keeps the upstream connections open, idle, in its pool.
    assert open_connections(live.port) >= 1
    took = stop_time(live)
    assert took < STOP_BOUND, f"stop took {took:.2f} s behind nginx's keepalive pool"
    assert "graceful timeout" not in live.output()
    # nginx notices the closed connections: with the service gone it answers 502 at once.
    assert requests.get(url + "/healthz", timeout=10).status_code == 502
