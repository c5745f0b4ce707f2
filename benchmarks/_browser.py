"""The headless Chromium the web view's tests and benchmark drive (Debian's, through
Playwright's Python package: Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import shutil

# flags for a closed network, as root, without a GPU
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """$OTEL_TRACKER_CHROMIUM, or Debian's ``chromium`` on PATH (scripts/test.sh installs it)."""
    return os.environ.get("OTEL_TRACKER_CHROMIUM") or shutil.which("chromium")
