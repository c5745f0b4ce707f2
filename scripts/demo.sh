#!/usr/bin/env bash
# Install otel-tracker (with the demo's numpy) into .venv and run the tracked demo pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
install_into_venv demo
exec .venv/bin/otel-tracker demo "$@"
