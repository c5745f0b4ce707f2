# Sourced by scripts/test.sh: the real training frameworks the integrations are
# tested against (tests/integrations/), installed into .venv when missing.
# PyTorch comes first and pinned, as its CPU build: asked for plainly (or through
# Lightning or transformers), pip takes a CUDA build of several GB. On the CI
# machines the pinned CPU wheel lies on disk (pip's find-links), so this costs
# about a minute; elsewhere pip downloads it. Override the pin with
# OTEL_TRACKER_TEST_TORCH (e.g. "torch==2.9.1" on aarch64).
ensure_frameworks() {
    local torch_spec="${OTEL_TRACKER_TEST_TORCH:-torch==2.13.0}"
    if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
        echo "installing ${torch_spec} (CPU) for the framework integration tests" >&2
        _quiet_pip "${torch_spec}"
    fi
    _quiet_pip -e ".[frameworks]"
}

# pip's output only when it fails (its notes about this machine's local indexes are noise)
_quiet_pip() {
    local out
    if ! out=$(PYTHONWARNINGS="ignore:Editable installation" \
        .venv/bin/python -m pip install --quiet "$@" 2>&1); then
        echo "$out" >&2
        return 1
    fi
}
