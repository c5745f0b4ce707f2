# Sourced by scripts/test.sh: a C compiler for the test of a compiled program that
# reports steps on its stdout (tests/integration/test_steps_any_language.py). Uses the
# one on PATH; otherwise installs Debian's `gcc` package (root needed, as in CI).
ensure_gcc() {
    if command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        echo "no C compiler and none can be installed here (needs root and apt-get):" \
            "install gcc; the compiled-program step test will fail" >&2
        return 0
    fi
    if ! apt-cache show gcc >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || true
    fi
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null 2>&1; then
        echo "installed Debian's gcc for the compiled-program step test" >&2
    else
        echo "could not install Debian's gcc; the compiled-program step test will fail" >&2
    fi
}
