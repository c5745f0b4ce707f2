# Sourced by scripts/test.sh: a C compiler for the test of a compiled program that
# reports steps on its stdout (tests/integration/test_steps_any_language.py). Uses the
# one on PATH; otherwise installs Debian's `gcc` package (root needed, as in CI).
ensure_gcc() {
    if command -v cc >/dev/null 2>&1; then
        return 0
    fi
    ensure_debian_package gcc "the compiled-program step test" gcc libc6-dev
}
