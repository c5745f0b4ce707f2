# Sourced by scripts/test.sh: a Chromium for the web view's browser tests
# (tests/ui/test_ui_browser.py drive it with Playwright's Python package; Playwright's
# own browser download is not used). Uses one on PATH or $OTEL_TRACKER_CHROMIUM;
# otherwise installs Debian's `chromium` package (root needed, as in CI).
ensure_chromium() {
    if [ -n "${OTEL_TRACKER_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        echo "chromium not found and cannot be installed here (needs root and apt-get):" \
            "install Debian's chromium or set OTEL_TRACKER_CHROMIUM; the browser tests will fail" >&2
        return 0
    fi
    if ! apt-cache show chromium >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || true
    fi
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        >/dev/null 2>&1; then
        echo "installed Debian's chromium for the browser tests" >&2
    else
        echo "could not install Debian's chromium; the browser tests will fail" >&2
    fi
}
