"""Small helpers shared by the tests: waiting for a condition, and gates a handler waits at."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

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
