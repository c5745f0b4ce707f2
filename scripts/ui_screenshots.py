"""The README's screenshots of ``otel-tracker ui``, taken in headless Chromium against
the demo's runs (two demo runs with different seeds, so the comparison has two).

    .venv/bin/python scripts/ui_screenshots.py [--output docs/images]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._browser import CHROMIUM_ARGS, chromium_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "images"))
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "otel_tracker.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        for seed in ("1", "2"):
            subprocess.run([*cli, "--root", str(root), "demo", "--seed", seed], check=True)
        ids = sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())
        server = subprocess.Popen(
            [*cli, "--root", str(root), "ui", "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            url = server.stdout.readline().split(": ", 1)[1].strip()  # type: ignore[union-attr]
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                page.wait_for_selector("#runs tbody tr")
                page.screenshot(path=str(out / "ui-runs.png"))
                page.goto(url + "run/" + ids[-1])
                page.wait_for_selector("#chart-cpu")
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "ui-run.png"), full_page=True)
                page.goto(url + "compare?" + "&".join(f"run={i}" for i in ids))
                page.wait_for_selector("#compare")
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "ui-compare.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    for name in ("ui-runs.png", "ui-run.png", "ui-compare.png"):
        print(out / name)


if __name__ == "__main__":
    main()
