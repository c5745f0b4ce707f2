#!/usr/bin/env bash
# Install the test dependencies into .venv and run the whole test suite
# (unit, integration with real processes and signals, ruff lint/format).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
install_into_venv test
exec .venv/bin/python -m pytest "$@"
