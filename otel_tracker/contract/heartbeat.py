"""Heartbeat refreshes of a manifest written by the sampling helper, never over newer state.

Why: every system call of a thread in the pipeline's process must win the GIL
back from the pipeline (benchmarks/bench_interference.py measured ~54 ms of the
main thread's CPU per heartbeat written there). The sampler thread already sends
the helper one request per sample; a due heartbeat rides along with it, and the
helper does the file system work.

The danger is order: a heartbeat encoded before a step ended must not land after
that step's own (durable) write, let alone after the final one. So the writer
numbers its state changes and, before each of its own writes, publishes the
number in ``.<manifest>.gen`` under an exclusive ``flock``; the helper renames a
heartbeat into place only under the same lock and only if the number it was
encoded with is still the published one. A heartbeat encoded before a change
either landed before the change was published (and the writer's own rename then
replaces it) or is dropped; one encoded after it (the writer encodes both under
one lock) is at least as new. A dropped heartbeat costs nothing: the next one
comes an interval later.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .atomic import open_owned, unlink_quietly, write_temp

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: heartbeats stay in-process
    fcntl = None  # type: ignore[assignment]

GENERATION_SUFFIX = ".gen"
_WIDTH = 20  # fixed width: a rewrite never needs truncating
# how long the pipeline's thread waits for a helper in the middle of a rename
LOCK_TIMEOUT_S = 1.0


def generation_path(manifest: Path) -> Path:
    """Where the published state number of ``manifest`` lives (a hidden file beside it)."""
    return manifest.with_name(f".{manifest.name}{GENERATION_SUFFIX}")


class GenerationFile:
    """The writer's side: publishes the number of its latest state change."""

    def __init__(self, path: Path, generation: int) -> None:
        if fcntl is None:
            raise OSError("file locks are not available on this platform")
        self.path = path
        self._fd = open_owned(path, os.O_RDWR | os.O_CREAT)
        try:
            self.publish(generation)
        except BaseException:
            self.close()
            raise

    def publish(self, generation: int) -> None:
        """Make ``generation`` the current one; raises ``OSError`` (e.g. a helper
        that holds the lock for more than :data:`LOCK_TIMEOUT_S`)."""
        if self._fd < 0:
            raise OSError("the generation file is closed")
        _lock(self._fd, LOCK_TIMEOUT_S)
        try:
            os.pwrite(self._fd, f"{generation:0{_WIDTH}d}\n".encode(), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _lock(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OSError("timed out waiting for the heartbeat lock") from None
            time.sleep(0.001)


class HeartbeatCommitter:
    """The helper's side: writes one manifest's heartbeats if they are still current."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self.written = 0
        self.dropped = 0

    def write(self, manifest: Path, generation: int, data: bytes) -> bool:
        """Write ``data`` to ``manifest`` unless its writer published a newer state;
        whether it was written. Raises ``OSError``."""
        fd = self._generation_fd(generation_path(manifest))
        tmp = write_temp(manifest, data, fsync=False)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.pread(fd, _WIDTH + 1, 0).strip()
            if current == str(generation).zfill(_WIDTH).encode():
                os.replace(tmp, manifest)
                self.written += 1
                return True
        except BaseException:
            unlink_quietly(tmp)
            raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        unlink_quietly(tmp)
        self.dropped += 1
        return False

    def _generation_fd(self, path: Path) -> int:
        key = str(path)
        fd = self._fds.get(key)
        if fd is None:
            fd = self._fds[key] = open_owned(path, os.O_RDWR)
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class ManifestHeartbeat:
    """A run's heartbeat: its manifest refreshed every ``interval`` seconds, by the
    sampling helper when it can (:meth:`share`), else in this process."""

    def __init__(self, processor: Any, interval: float) -> None:
        self._processor = processor  # a ManifestSpanProcessor
        self.interval = interval
        writer = processor.writer
        self.path: Path | None = writer.path if writer is not None else None

    def share(self) -> bool:
        """Whether another process may write the heartbeats from now on."""
        writer = self._processor.writer
        return writer is not None and writer.share() is not None

    @property
    def shared(self) -> bool:
        """Whether the helper still writes them (a failure moves them back here)."""
        writer = self._processor.writer
        return writer is not None and writer.shared

    def unshare(self) -> None:
        if self._processor.writer is not None:
            self._processor.writer.unshare()

    def payload(self) -> tuple[int, bytes] | None:
        """What the helper writes, or ``None``: call :meth:`write_here`."""
        return self._processor.heartbeat_payload()

    def write_here(self) -> None:
        self._processor.write(durable=False)

    def report(self, exc: OSError) -> None:
        """The helper could not write one (warned once per kind, as our own writes)."""
        if self._processor.writer is not None:
            self._processor.writer.report(exc)
