#!/usr/bin/env bash
# Install the test dependencies into .venv and run the whole test suite
# (unit, integration with real processes, signals and servers, ruff lint/format).
# A Prometheus server for the mirror's integration test, and Debian's Chromium for
# the web view's browser tests, are fetched if missing, and so are PyTorch (its CPU
# build), Lightning, transformers and Keras for the integrations' tests, a C
# compiler for the test of a compiled program reporting steps, and Open MPI's
# mpirun for the test of a real MPI job.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_debian.sh
source scripts/_prometheus.sh
source scripts/_chromium.sh
source scripts/_frameworks.sh
source scripts/_gcc.sh
source scripts/_mpi.sh
install_into_venv test
ensure_frameworks
ensure_prometheus
ensure_chromium
ensure_gcc
ensure_mpirun
exec .venv/bin/python -m pytest "$@"
