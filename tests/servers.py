"""Real servers for the tests: redis-server and nginx, started by the tests on free loopback
ports in temp dirs, stopped by PID.

Loaded as a pytest plugin by tests/conftest.py: the ``redis_server`` fixture is one password
protected redis-server with ``appendonly yes`` for the whole session; tests keep apart by key
prefix (:func:`unique_prefix`). :class:`NginxServer` runs deploy/nginx.conf with its ports,
paths and certificate rewritten. Without a binary, its tests skip with one line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REDIS_PASSWORD = "test-redis-secret-7f3a"  # only ever on this loopback test server
INSTALL_HINT = "apt-get install redis-server nginx, or run scripts/test.sh as root"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str) -> str | None:
    """The program's path; also looks in the sbin directories a non-root PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition()`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """One ``redis-server`` on 127.0.0.1 with its data (AOF) in ``directory``.

    ``restart()`` keeps port and directory, so what was written comes back from the AOF.
    """

    def __init__(
        self, directory: Path, *, password: str | None = REDIS_PASSWORD, tls: bool = False
    ) -> None:
        binary = find_binary("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.binary = binary
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "redis.log"
        self.certificate = make_certificate(directory) if tls else None
        listen = [f"port {self.port}"]
        if self.certificate is not None:  # TLS only: the plain port is off
            listen = ["port 0", f"tls-port {self.port}", "tls-auth-clients no"]
            listen += [f"tls-cert-file {self.certificate}", f"tls-key-file {directory}/key.pem"]
        config = [
            *listen,
            "bind 127.0.0.1",
            f"dir {directory}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            f"logfile {self.log_path}",
            "enable-debug-command local",  # DEBUG SLEEP simulates a stalled server
        ]
        if password:
            config.append(f"requirepass {password}")
        self.config_path = directory / "redis.conf"
        self.config_path.write_text("\n".join(config) + "\n")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.certificate is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.certificate}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=5,
            ssl=self.certificate is not None,
            ssl_ca_certs=str(self.certificate) if self.certificate else None,
        )

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.certificate is None:
            return sock
        context = ssl.create_default_context(cafile=str(self.certificate))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, str(self.config_path)],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}:\n{self.log()}"
                )
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server not ready after {timeout} s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with self._connect(0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    if not sock.recv(64).startswith(b"+OK"):
                        return False
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def is_stalled(self) -> bool:
        """Whether the server leaves a PING unanswered for 0.2 s (e.g. during DEBUG SLEEP)."""
        with self._connect(5) as probe:
            probe.settimeout(0.2)
            probe.sendall(b"PING\r\n")  # without AUTH the answer is an error, but an answer
            try:
                probe.recv(64)
            except TimeoutError:
                return True
            return False

    def stall(self, seconds: float) -> threading.Thread:
        """Block the whole server for ``seconds`` (DEBUG SLEEP); returns once it is blocked."""
        admin = self.client()
        sleeper = threading.Thread(
            target=lambda: (admin.execute_command("DEBUG", "SLEEP", str(seconds)), admin.close())
        )
        sleeper.start()
        wait_until(self.is_stalled, 10, "redis-server to stall")
        return sleeper

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop this server by its PID (SIGTERM saves and exits; SIGKILL is a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One line at the end of the run (with -q too) when the real servers are missing."""
    missing = [name for name in ("redis-server", "nginx") if find_binary(name) is None]
    if missing:
        terminalreporter.write_line(
            f"{' and '.join(missing)} not installed: their tests were skipped ({INSTALL_HINT})"
        )


def start_redis(directory: Path, *, tls: bool = False) -> RedisServer:
    """A started server, or a skip with one line naming what to install."""
    if find_binary("redis-server") is None:
        pytest.skip(f"redis-server not installed ({INSTALL_HINT})")
    directory.mkdir(parents=True, exist_ok=True)
    return RedisServer(directory, tls=tls).start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart with :func:`unique_prefix`."""
    with tempfile.TemporaryDirectory(prefix="wecom-redis-") as directory:
        server = start_redis(Path(directory))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, free to be stopped, killed and restarted."""
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


def unique_prefix(tag: str = "t") -> str:
    return f"{tag}{uuid.uuid4().hex[:10]}:"


# -- nginx ----------------------------------------------------------------------------------------
def _rewrite(text: str, pattern: str, replacement: str, flags: int = re.MULTILINE) -> str:
    """Replace exactly one match: a changed deploy/nginx.conf fails here, not silently."""
    new, count = re.subn(pattern, lambda _: replacement, text, flags=flags)
    if count != 1:
        raise AssertionError(f"deploy/nginx.conf: expected one match of {pattern!r}, got {count}")
    return new


def nginx_test_config(
    source: str, directory: Path, *, https_port: int, http_port: int, upstreams: list[int]
) -> str:
    """deploy/nginx.conf with loopback ports, the given instances, and files in ``directory``."""
    text = _rewrite(source, r"^user .*;\n", "")  # root runs workers as nobody
    text = _rewrite(text, r"^pid .*;", f"pid {directory}/nginx.pid;")
    text = _rewrite(text, r"^error_log \S+", f"error_log {directory}/error.log")
    text = _rewrite(text, r"access_log \S+;", f"access_log {directory}/access.log;")
    servers = "".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstreams
    )
    text = _rewrite(text, r"(^ *server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers)
    text = _rewrite(text, r"listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _rewrite(text, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _rewrite(text, r"ssl_certificate +\S+;", f"ssl_certificate {directory}/cert.pem;")
    text = _rewrite(text, r"ssl_certificate_key +\S+;", f"ssl_certificate_key {directory}/key.pem;")
    temp_paths = "".join(
        f"    {kind}_temp_path {directory}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return _rewrite(text, r"^http \{\n", "http {\n" + temp_paths)


def make_certificate(directory: Path) -> Path:
    """A throwaway self-signed certificate for 127.0.0.1 (cert.pem, key.pem); its path."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return directory / "cert.pem"


class NginxServer:
    """nginx running deploy/nginx.conf (rewritten for the test) in front of ``upstreams``."""

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        binary = find_binary("nginx")
        if binary is None or shutil.which("openssl") is None:
            pytest.skip(f"nginx or openssl not installed ({INSTALL_HINT})")
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.https_port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.certificate = make_certificate(directory)
        self.config_path = directory / "nginx.conf"
        self.config_path.write_text(
            nginx_test_config(
                (PROJECT_ROOT / "deploy" / "nginx.conf").read_text(),
                directory,
                https_port=self.https_port,
                http_port=self.http_port,
                upstreams=upstreams,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "-p", str(self.directory),
            "-c", str(self.config_path),
            "-e", str(self.directory / "error.log"),
            *extra,
        ]  # fmt: skip

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the generated file."""
        return subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def start(self, timeout: float = 10.0) -> NginxServer:
        self.process = subprocess.Popen(
            self._command("-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nginx not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return (self.directory / "error.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT to the master (graceful); SIGKILL to its process group if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
