#!/usr/bin/env bash
# Install the test dependencies into .venv and run the whole test suite
# (unit, integration with real processes, signals and servers, ruff lint/format).
# A Prometheus server for the mirror's integration test is fetched if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_prometheus.sh
install_into_venv test
ensure_prometheus
exec .venv/bin/python -m pytest "$@"
