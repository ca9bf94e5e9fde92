"""Small helpers shared by the tests: waiting for a condition, gates a handler waits at, and a
script run in a child process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: The folder of the gates (a gate is open once the file of its name exists there), so a handler
#: in a gunicorn worker waits for the test process as one in the test's own threads does.
GATES_VARIABLE = "TEST_HANDLER_GATES"
GATE_POLL_SECONDS = 0.02


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy (returned), bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Gates:
    """Named gates in ``folder``: a test handler told "hold NAME" waits until the test opens
    NAME, so a test decides when a handler finishes instead of guessing with a sleep."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def open(self, *names: str) -> None:
        for name in names:
            (self.folder / name).touch()


def wait_at_gate(name: str, timeout: float = 30.0) -> None:
    """Block (yielding under gevent) until the gate ``name`` is open; raise after ``timeout``."""
    folder = os.environ.get(GATES_VARIABLE)
    if not folder:
        raise RuntimeError(f"{GATES_VARIABLE} is not set: no gate to wait at")
    gate = Path(folder) / name
    deadline = time.monotonic() + timeout
    while not gate.exists():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gate {name} still closed after {timeout} s")
        time.sleep(GATE_POLL_SECONDS)


def assert_script_prints_ok(script: str, *args: str, timeout: float = 120.0) -> None:
    """Run ``python -c script args…`` from the project root in a new process (one that may
    patch itself with gevent, unlike the test process) and check it ended well, printing "ok"."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
