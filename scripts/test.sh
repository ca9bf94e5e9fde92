#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: creates .venv, installs the pinned packages, runs
# ruff and pytest (unit, Flask, and end-to-end tests against real gunicorn processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev

# --- observability: headless Chromium for the console tests, promtool for deploy/*.yml -----------
# Installed from Debian's packages when running as root (CI) and missing; without them those
# tests skip with one line saying what to install.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    command -v promtool >/dev/null || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
fi
# --- end observability ----------------------------------------------------------------------------
.venv/bin/ruff check app tests bench wsgi.py gunicorn.conf.py web.py
exec .venv/bin/python -m pytest "$@"
