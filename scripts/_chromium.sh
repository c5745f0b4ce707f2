# Sourced by scripts/test.sh: a Chromium for the web view's browser tests
# (tests/ui/test_ui_browser.py drive it with Playwright's Python package; Playwright's
# own browser download is not used). Uses one on PATH or $OTEL_TRACKER_CHROMIUM;
# otherwise installs Debian's `chromium` package (root needed, as in CI).
ensure_chromium() {
    if [ -n "${OTEL_TRACKER_CHROMIUM:-}" ]; then
        return 0
    fi
    ensure_debian_package chromium "the browser tests" chromium
}
