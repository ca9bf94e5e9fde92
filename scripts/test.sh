#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: creates .venv, installs the pinned packages, runs
# ruff and pytest (unit, Flask, and end-to-end tests against real gunicorn processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
.venv/bin/ruff check app tests bench wsgi.py gunicorn.conf.py web.py
# Two processes (this machine has two cores), one test file each at a time: a file's module-scoped
# services start once. Pass -n 0 to run in one process.
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
