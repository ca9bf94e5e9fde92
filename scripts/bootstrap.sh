#!/usr/bin/env bash
# Create .venv and install the pinned packages (runtime, or with "dev" the test tools too).
# Re-installs only when the requirements file changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$requirements" .txt)"
digest=$(cat requirements.txt "$requirements" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
fi
