"""Shared fixtures: a fresh runs root, a clean environment, in-memory spans and a
template manifest (the helpers they use are in ``tests/helpers.py``)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts a background command with SIGINT ignored,
    # and an ignored signal is inherited by every process the tests start: their
    # runs (rightly) keep it ignored, and every Ctrl-C test would hang. The tests
    # send SIGINT as a terminal does, so they start from its default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def _clean_tracker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests choose their own settings (ours and the SDK's); the developer's shell must not leak in.
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def in_memory_spans() -> Iterator[Any]:
    """An InMemorySpanExporter behind a SimpleSpanProcessor, to pass as span_processors."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    yield exporter, SimpleSpanProcessor(exporter)


@pytest.fixture(scope="session")
def template_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real manifest from a real run, to clone into synthetic history."""
    from otel_tracker import track_run

    root = tmp_path_factory.mktemp("template")
    with track_run(
        "template", root=root, steps=["a", "b", "c"], install_signal_handlers=False
    ) as run:
        run.log({}, direction={"loss": "min"})
        for name in ("a", "b"):
            with run.step(name) as s:
                s.set_total(4)
                s.advance(4)
                s.log({"loss": 0.5, "acc": float("nan")})  # readers meet series too
    return json.loads(run.manifest_path.read_text())
