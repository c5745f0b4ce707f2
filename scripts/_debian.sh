# Sourced by scripts/test.sh: install a Debian package a test needs when its command
# is missing (root and apt-get needed, as in CI); says what will fail otherwise.
# ensure_debian_package COMMAND WHAT PACKAGE...
ensure_debian_package() {
    local command=$1 what=$2
    shift 2
    if command -v "$command" >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        echo "$command not found and cannot be installed here (needs root and apt-get):" \
            "install Debian's $*; $what will fail" >&2
        return 0
    fi
    if ! apt-cache show "$1" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || true
    fi
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
        echo "installed Debian's $* for $what" >&2
    else
        echo "could not install Debian's $*; $what will fail" >&2
    fi
}
