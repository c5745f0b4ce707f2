"""Artifacts while a wrapped command runs, not only after it: the working directory
is scanned every ``interval`` seconds (a live view sees a checkpoint when it
appears) and once more when the command has exited; then the TensorBoard and W&B
directories found are read into the run (:mod:`.artifact_content`).

The cost is bounded: one scan is bounded by :func:`.artifacts.scan`, and a slow one
pushes the next further away (at most 5% of one CPU goes to scanning). An artifact
is registered again only when it changed (a new kind, or a file's new size), so
the manifest is not rewritten for nothing. Nothing here ever fails the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import artifact_scan_interval
from .artifact_content import import_artifact_content
from .artifacts import Artifact, scan

logger = logging.getLogger(__name__)

SCAN_SHARE = 0.05  # of one CPU, at most, that scanning takes


class ArtifactWatch:
    """Scans ``directory`` for what the run's command leaves, on a thread of its own.

    ``with ArtifactWatch(run, Path.cwd()) as watch: ...run the command...;
    watch.finish()``: the last scan and the content import happen in ``finish``,
    which the caller runs before the run ends.
    """

    def __init__(
        self,
        run: Any,
        directory: Path,
        *,
        since: float | None = None,
        interval: float | None = None,
    ) -> None:
        self.run = run
        self.directory = directory
        self.since = time.time() if since is None else since
        self.interval = artifact_scan_interval(interval)
        self._known: dict[Path, tuple[str, int | None]] = {}
        self._found: dict[Path, Artifact] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # one scan at a time: the thread's or finish()'s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ArtifactWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.interval > 0 and self.run.dir is not None and self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="otel-tracker-artifacts", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)  # a scan is bounded (2 s): never held for long

    def finish(self, stopped: Callable[[], bool] = lambda: False) -> None:
        """The last scan, then the content of what was found, unless ``stopped()``
        (the operator cancelled: the run's end does not wait on it); never raises."""
        self.stop()
        if self.run.dir is None:
            return  # tracking is off or the root is unusable: nowhere to record them
        self.scan_once()
        import_artifact_content(
            self.run,
            list(self._found.values()),
            self.directory,
            since=self.since,
            stopped=stopped,
        )

    def scan_once(self) -> float:
        """Scan, register what is new or changed; the seconds the scan took."""
        started = time.monotonic()
        with self._lock:
            try:
                exclude = (Path(self.run.dir).parent,)
                found, problems = scan(self.directory, since=self.since, exclude=exclude)
            except Exception as exc:
                self._warn_once(f"artifact scan failed: {exc}")
                return time.monotonic() - started
            for artifact in found:
                self._found[artifact.path] = artifact
                state = (artifact.kind, _size(artifact.path))
                if self._known.get(artifact.path) != state:
                    self._known[artifact.path] = state
                    self.run.add_artifact(artifact.path, kind=artifact.kind)
            for problem in problems:
                self._warn_once(problem)
        return time.monotonic() - started

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                took = self.scan_once()
            except Exception:  # never the pipeline's problem
                logger.debug("otel-tracker artifact scan failed", exc_info=True)
                took = 0.0
            wait = max(self.interval, took / SCAN_SHARE)

    def _warn_once(self, problem: str) -> None:
        # a truncated walk says so once, not every 30 s of a day-long run
        key = problem.split(" stopped after ")[0]
        if key not in self._warned:
            self._warned.add(key)
            self.run.record.warn(problem)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None
