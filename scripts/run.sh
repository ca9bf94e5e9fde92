#!/usr/bin/env bash
# Run the service: gunicorn with gevent workers on port 8000. With no keys configured it starts
# the development profile. Takes the guide's flags: -p=8000 -t=TOKEN -c=CORPID -a=ENCODING_AES_KEY
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m app "$@"
