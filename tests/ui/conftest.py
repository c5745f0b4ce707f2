"""A real ``otel-tracker ui`` server on 127.0.0.1 (an ephemeral port), in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks._browser import CHROMIUM_ARGS
from benchmarks._browser import chromium_path as find_chromium
from otel_tracker.config import ReaderConfig
from otel_tracker.history.store import RunStore
from otel_tracker.ui.server import UiServer


class RunningServer:
    def __init__(self, root: Path, **options: Any) -> None:
        self.server = UiServer(RunStore(config=ReaderConfig(root=root)), port=0, **options)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "the server did not start"
        self.url = self.server.url
        self.port = self.server.port

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def ui_server(root: Path) -> Iterator[Any]:
    root.mkdir(parents=True, exist_ok=True)
    running: list[RunningServer] = []

    def start(**options: Any) -> RunningServer:
        server = RunningServer(root, **options)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


def chromium_path() -> str:
    """Debian's Chromium (installed by scripts/test.sh), or $OTEL_TRACKER_CHROMIUM."""
    found = find_chromium()
    if not found:  # a missing browser fails the test: it never passes silently
        pytest.fail(
            "no chromium: run scripts/test.sh (it installs Debian's chromium) "
            "or set OTEL_TRACKER_CHROMIUM"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module, stopped after it: Playwright's sync API keeps an
    event loop running on the main thread, which later tests' asyncio.run refuses."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that fails the test on any script error or dialog."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    opened = context.new_page()
    opened.errors = []  # type: ignore[attr-defined]
    opened.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    opened.on(
        "dialog",
        lambda dialog: (opened.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()),
    )
    opened.on(
        "console",
        lambda m: m.type == "error" and opened.errors.append(f"console: {m.text}"),
    )
    yield opened
    context.close()
