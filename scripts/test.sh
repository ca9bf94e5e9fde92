#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: creates .venv, installs the pinned packages, runs
# ruff and pytest (unit, Flask, and end-to-end tests against real gunicorn processes, a real
# redis-server and a real nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# The tests start these Debian binaries themselves: redis-server, nginx, headless Chromium with
# its driver (the console tests) and promtool (from prometheus: checks deploy/*.yml). As root,
# install the missing ones (once: later runs find them); otherwise their tests skip with one line.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v promtool >/dev/null || missing+=(prometheus)
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
