"""A redis-server for the benchmarks: 127.0.0.1, a free port, a password, the append-only file
in a temporary directory (``appendfsync everysec``, as the README advises); stopped by its pid."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

from .common import HOST, free_port


class RedisProcess:
    """A redis-server on a free loopback port with its AOF in ``directory``; stopped by pid."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.password = secrets.token_hex(12)
        config = directory / "redis.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\nappendonly yes\n"
            f'appendfsync everysec\nsave ""\nrequirepass {self.password}\n'
            f"logfile {directory / 'redis.log'}\n"
        )
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, start_new_session=True
        )
        self.url = f"redis://:{self.password}@{HOST}:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=5)

    def commands_processed(self) -> int:
        """Commands the server has run since it started (all clients; INFO stats)."""
        with self.client() as client:
            return int(client.info("stats")["total_commands_processed"])

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except Exception:  # not listening yet
                time.sleep(0.05)
        raise RuntimeError(f"redis-server not ready after {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # our own child, by its pid
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
