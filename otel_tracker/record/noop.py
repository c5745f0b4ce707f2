"""The disabled run: same surface as :class:`~otel_tracker.record.run.Run`, no effects.

Returned when tracking is off (``OTEL_TRACKER_DISABLED=true`` or
``OTEL_SDK_DISABLED=true``). Imports nothing heavy and costs next to nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any


class NoopStep:
    """A step that counts but records nothing."""

    __slots__ = ("completed", "name", "total", "unit")

    def __init__(self, name: str = "", total: int | None = None, unit: str | None = None) -> None:
        self.name = name
        self.completed = 0
        self.total = total
        self.unit = unit

    index = -1

    def advance(self, n: int = 1) -> None:
        self.completed += n

    def log(self, values: Any, value: Any = None, **_: Any) -> None:
        return None

    def set_total(self, total: int | None, unit: str | None = None) -> None:
        self.total = total
        if unit is not None:
            self.unit = unit

    def follow(self, source: Any) -> None:
        return None

    def read_progress(self) -> tuple[int, int | None, str | None]:
        return self.completed, self.total, self.unit

    def add_artifact(
        self, path: str | os.PathLike[str], kind: str | None = None, *, best: bool = False
    ) -> None:
        return None

    def start(self) -> NoopStep:
        return self

    def stop_clock(self) -> None:
        return None

    def end(self, error: BaseException | None = None) -> None:
        return None

    def __enter__(self) -> NoopStep:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class NoopRun:
    """A run that records nothing; every method works and returns quickly."""

    run_id: str | None = None
    dir: Path | None = None
    manifest_path: Path | None = None
    trace_id: str | None = None
    scenario: str | None = None
    ended: bool = False

    def __init__(self, name: str = "", **_: Any) -> None:
        self.name = name
        self.ended = False

    def step(
        self,
        name: str,
        *,
        total: int | None = None,
        unit: str | None = None,
        expected_duration: float | None = None,
    ) -> NoopStep:
        return NoopStep(name, total, unit)

    def skip(self, name: str, reason: str = "") -> None:
        return None

    def add_artifact(
        self, path: str | os.PathLike[str], kind: str | None = None, *, best: bool = False
    ) -> None:
        return None

    def log(self, values: Any, value: Any = None, **_: Any) -> None:
        return None

    def log_params(self, params: Any) -> None:
        return None

    def import_series(self, series: Any, *, source: str) -> list[str]:
        return []

    def set_gauge(self, name: str, value: float) -> None:
        return None

    def add_count(self, name: str, n: float = 1) -> None:
        return None

    def resource_history(self, key: str, seconds: float | None = None) -> list[tuple[float, float]]:
        return []

    def log_scores(
        self,
        scores: Any,
        *,
        direction: Any = None,
        epoch: int | None = None,
    ) -> None:
        return None

    def end(self, error: BaseException | None = None) -> None:
        self.ended = True

    def end_with_signal(self, signum: int, forwarded: bool = False) -> None:
        self.ended = True

    def __enter__(self) -> NoopRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(exc)

    def __repr__(self) -> str:
        return "<NoopRun (tracking disabled)>"
