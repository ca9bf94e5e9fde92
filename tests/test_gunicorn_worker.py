"""The gunicorn worker class module stays light: gunicorn's master imports it before forking,
so whatever it imports is imported in every worker before gevent patches the standard library.
(Its stop behaviour is tested end to end in tests/e2e/test_graceful_stop.py.)"""

from __future__ import annotations

import subprocess
import sys

from app.__main__ import PROJECT_ROOT

PROBE = """
import sys
import app.web.gunicorn_worker as worker
assert worker.GracefulGeventWorker.__mro__[1].__name__ == "GeventWorker"
monkey = sys.modules.get("gevent.monkey")
print("patched" if monkey and monkey.is_anything_patched() else "not patched")
heavy = ("flask", "requests", "app.web.extension", "app.jobs")
print(",".join(name for name in heavy if name in sys.modules) or "nothing heavy")
"""


def test_worker_module_imports_neither_the_app_nor_patches():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["not patched", "nothing heavy"]
