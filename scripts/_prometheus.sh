# Sourced by scripts/test.sh: make a Prometheus server binary available to the
# integration tests without installing a system service. Uses one on PATH if
# there is one; otherwise unpacks Debian's `prometheus` package into
# .venv/prometheus/ (apt-get download + dpkg-deb -x: no root, no daemon started;
# root only refreshes the package lists when they lack it).
ensure_prometheus() {
    local dest=.venv/prometheus
    if command -v prometheus >/dev/null 2>&1 || [ -x "$dest/usr/bin/prometheus" ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "prometheus not found and apt-get is unavailable: install a Prometheus server" \
            "and put it on PATH (or set PROMETHEUS_BIN); its integration test will fail" >&2
        return 0
    fi
    if ! apt-cache show prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null || true
    fi
    local tmp
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
        mkdir -p "$dest"
        dpkg-deb -x "$tmp"/prometheus_*.deb "$dest"
        echo "unpacked Debian's prometheus into $dest for the integration tests" >&2
    else
        echo "could not fetch Debian's prometheus package; its integration test will fail" >&2
    fi
    rm -rf "$tmp"
}
