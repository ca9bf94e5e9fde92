#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: creates .venv, installs the pinned packages, runs
# ruff and pytest (unit, Flask, and end-to-end tests against real gunicorn processes, a real
# redis-server and a real nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# The Redis and nginx tests start the Debian binaries themselves; as root, install them when
# missing (once: later runs find them). Without them, and not root, those tests skip.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} for the tests (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} not installed: their tests will be skipped"
    fi
fi
.venv/bin/ruff check app tests bench wsgi.py gunicorn.conf.py web.py
# Two processes (this machine has two cores), one test file each at a time: a file's module-scoped
# services start once. Pass -n 0 to run in one process.
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
