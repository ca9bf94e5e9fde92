"""The directory where gunicorn's workers keep their Prometheus metrics (multiprocess mode).

prometheus_client sums the workers' metrics from files in ``PROMETHEUS_MULTIPROC_DIR``; the
variable must be set before a worker imports it, and the directory must start empty. The gunicorn
master does both (gunicorn.conf.py calls :func:`prepare`): it makes a private temporary directory,
or empties the one the operator named, and its workers inherit the variable. When a worker dies,
``child_exit`` calls :func:`worker_exited` (its counters stay and are still summed; only its live
gauges go); on exit the master removes the directory it made.

The master never imports the application, and prometheus_client only when a worker exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set by :func:`prepare` to the directory it made itself (removed again at exit).
OWNED_ENV = "WECOM_METRICS_DIR_OWNED"


def prepare(environ: dict[str, str] | None = None) -> Path:
    """Make (or empty) the metrics directory and export it; a config reload keeps it."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    owned = environ.get(OWNED_ENV)
    if owned and environ.get(ENV) == owned and Path(owned).is_dir():
        return Path(owned)  # gunicorn re-reads its config on SIGHUP: keep the workers' counts
    given = environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # left by an earlier run: counts must start at zero
            stale.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="wecom-metrics-"))
    environ[ENV] = str(path)
    environ[OWNED_ENV] = str(path)
    return path


def worker_exited(pid: int) -> None:
    """Forget the live gauges of a dead worker (gunicorn's ``child_exit``)."""
    if not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def cleanup(environ: dict[str, str] | None = None) -> None:
    """Remove the directory :func:`prepare` made (gunicorn's ``on_exit``)."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    owned = environ.get(OWNED_ENV)
    if owned and environ.get(ENV) == owned:
        shutil.rmtree(owned, ignore_errors=True)
