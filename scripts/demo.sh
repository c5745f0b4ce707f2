#!/usr/bin/env bash
# Install otel-tracker (with the demo's numpy) into .venv and run the tracked demo pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[demo]'
exec .venv/bin/otel-tracker demo "$@"
