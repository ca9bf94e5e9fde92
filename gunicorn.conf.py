"""gunicorn settings for the callback service. Each can be overridden from the environment.

Check a change with ``gunicorn --check-config -c gunicorn.conf.py wsgi:app``: gunicorn ignores
setting names it does not know.
"""

import multiprocessing
import os

from app.web import metrics_dir
from app.web.serving import default_bind, default_timeout, preflight, release_worker_leases

# Build the app once in a child process before forking: a bad setting stops here with one line
# naming it, and the start-up summary is printed once (not once per worker).
_checked = preflight()

# Prometheus multiprocess mode: the workers' metrics go to files in a directory made (or emptied)
# here, before any worker starts; /metrics sums them. Removed again in on_exit.
metrics_dir.prepare()

# Where to listen. PORT is what most platforms set; GUNICORN_BIND wins when given. The development
# profile (public test keys) listens on 127.0.0.1 unless a bind is given.
bind = default_bind(_checked.development_profile)

# One log format for gunicorn's lines and the service's.
logger_class = "app.web.serving.GunicornLogger"

# gevent workers: a handler blocked on a business API or an LLM yields to the other requests.
# gunicorn's own "gevent" class (its HTTP parser on gevent), chosen by measurement
# (bench/connections.py, 2 workers): it closes idle and stalled connections after `keepalive`
# seconds and logs one line per malformed request, where gevent_pywsgi kept 2,500 idle sockets
# forever (no callback answered), never closed headers sent a byte a second, and wrote 19 to 39
# log lines with tracebacks per malformed request. For plain callbacks both measure alike
# (bench/run.py: p99 98 ms vs 100 ms, one worker, 64 keep-alive connections). The default adds
# a stop that hangs up idle keep-alive connections at once (app/web/gunicorn_worker.py): a
# restart takes about a second instead of waiting for nginx's or WeCom's pooled connections.
# The price, measured side by side (bench/run.py, one worker, 64 keep-alive connections): a
# longer tail than gevent_pywsgi under plain load (p99 140 ms against 85 ms, 6 % fewer req/s);
# both share the worker fairly (answers per connection 64-77 and 65-91).
worker_class = os.environ.get(
    "GUNICORN_WORKER_CLASS", "app.web.gunicorn_worker.GracefulGeventWorker"
)

# Callbacks are I/O-bound, so a couple of processes per core is plenty.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count(), 8)))

# Concurrent connections (greenlets) per worker.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))

# Under gevent this only detects a wedged worker (a handler burning the CPU); the reply deadline
# bounds each request. Default: half of WECOM_LEASE_SECONDS, at most 30 s, so a wedged worker is
# killed, and its jobs released, before their leases run out (see default_timeout).
timeout = default_timeout()
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))

# WeCom and nginx reuse connections. With the gevent class this also bounds how long a connection
# may sit idle or send its headers before it is closed: short, so that idle sockets cannot hold
# every connection slot (2 workers x 1000) for long. nginx's upstream keepalive_timeout must be
# shorter (deploy/nginx.conf).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "2"))

# Errors on stderr, as containers expect. The access log is off unless GUNICORN_ACCESSLOG names a
# file or "-" (stdout): its line costs about 8 % of a worker's CPU per callback (bench/PROFILE.txt),
# and the proxy in front logs each request anyway.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Behind nginx: trust X-Forwarded-* from the proxy address only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 27's control socket (for gunicornc) defaults to one path per user, which two services on
# one host would take from each other: off unless GUNICORN_CONTROL_SOCKET names a path.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

# No preload: the gevent worker must patch before the app opens sockets or the store.
preload_app = False


def post_fork(server, worker):
    """Hand the worker the arbiter's signal queue: a stop signal sent in the moment between the
    fork and the worker's own handlers lands there (app/web/gunicorn_worker.py)."""
    worker.signals_before_init = server.SIG_QUEUE


def post_worker_init(worker):
    """Start the worker's background tasks (delivery, recovery) once its sockets are patched.

    The heartbeat first: gunicorn's timeout only applies to a worker that has sent one, and the
    first sweep may at once take over a handler that holds the CPU (it killed the last worker).
    """
    worker.notify()
    service = getattr(worker.wsgi, "extensions", {}).get("wecom")
    if service is not None:
        service.start_background()


def worker_abort(worker):
    """gunicorn's timeout (SIGABRT) is about to raise SystemExit in whatever greenlet holds the CPU,
    often a handler stuck in a loop: mark it as the worker stopping, not the handler failing."""
    from app.jobs.failures import mark_stopping

    mark_stopping()


def worker_int(worker):
    from app.jobs.failures import mark_stopping

    mark_stopping()


def child_exit(server, worker):
    """In the master, once a worker has exited or died: release its jobs' leases at once, and
    mark its Prometheus files dead (app/web/metrics_dir.py)."""
    release_worker_leases(worker.pid)
    metrics_dir.worker_exited(worker.pid)


def worker_exit(server, worker):
    service = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("wecom")
    if service is not None:
        service.stop_background()


def on_exit(server):
    """The Prometheus multiprocess directory is the master's: remove it."""
    metrics_dir.cleanup()
