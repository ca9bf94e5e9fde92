"""gunicorn settings for the callback service. Each can be overridden from the environment.

Check a change with ``gunicorn --check-config -c gunicorn.conf.py wsgi:app``: gunicorn ignores
setting names it does not know.
"""

import multiprocessing
import os

from app.web.serving import default_bind, preflight

# Build the app once in a child process before forking: a bad setting stops here with one line
# naming it, and the start-up summary is printed once (not once per worker).
_checked = preflight()

# Where to listen. PORT is what most platforms set; GUNICORN_BIND wins when given. The development
# profile (public test keys) listens on 127.0.0.1 unless a bind is given.
bind = default_bind(_checked.development_profile)

# One log format for gunicorn's lines and the service's.
logger_class = "app.web.serving.GunicornLogger"

# gevent workers: a handler blocked on a business API or an LLM yields to the other requests.
# gevent_pywsgi is the base: under this app it has the shorter tail (bench/, one worker, 64
# keep-alive connections: p99 85 ms against 140 ms for the plain gevent class, which also answers
# 6 % fewer per second); both share the worker fairly (answers per connection 65-91 and 64-77).
# The default is gunicorn's gevent_pywsgi worker with a stop that does not wait for idle keep-alive
# clients (nginx's upstream pool, WeCom): it stops in well under a second instead of waiting out
# graceful_timeout, while requests in flight still finish (see app/web/gunicorn_worker.py).
worker_class = os.environ.get(
    "GUNICORN_WORKER_CLASS", "app.web.gunicorn_worker.GracefulGeventWorker"
)

# Callbacks are I/O-bound, so a couple of processes per core is plenty.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count(), 8)))

# Concurrent connections (greenlets) per worker.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))

# Under gevent this only detects a wedged worker; the reply deadline bounds each request.
# graceful_timeout bounds how long a stopping worker lets requests in flight finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))

# WeCom and nginx reuse connections.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

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


def post_worker_init(worker):
    """Start the worker's background tasks (delivery, recovery) once its sockets are patched."""
    service = getattr(worker.wsgi, "extensions", {}).get("wecom")
    if service is not None:
        service.start_background()


def worker_exit(server, worker):
    service = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("wecom")
    if service is not None:
        service.stop_background()
