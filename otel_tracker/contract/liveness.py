"""Proof of life that readers can check: an ``flock`` held for the run's lifetime.

The kernel drops the lock when the process dies, however it dies, so a reader
that can take the lock knows the run's process is gone. Where ``fcntl`` does not
exist (Windows) readers fall back on the pid and the heartbeat.
"""

from __future__ import annotations

import logging
import os
import stat
import time
import weakref
from pathlib import Path
from typing import Any

from .atomic import open_owned

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_held: weakref.WeakSet[RunLock] = weakref.WeakSet()
_fork_hook_installed = False


def _close_in_child() -> None:
    # A forked child shares the parent's open file description; closing its
    # copy keeps the lock tied to the parent's life alone.
    for lock in list(_held):
        lock._forget()


# A reader probes a lock with a shared flock held for microseconds (lock_is_held): a run
# taking its lock at that instant waits for the probe to end rather than fail.
LOCK_RETRY_S = 0.2


def _lock_exclusive(fd: int) -> None:
    deadline = time.monotonic() + LOCK_RETRY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[union-attr]
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.001)


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<run>/.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, content: str = "") -> bool:
        """Take the lock; ``False`` if locks are unsupported or it failed."""
        global _fork_hook_installed
        if fcntl is None:
            return False
        try:
            fd = open_owned(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            logger.warning("otel-tracker could not create lock file %s: %s", self.path, exc)
            return False
        try:
            _lock_exclusive(fd)
            os.ftruncate(fd, 0)
            os.write(fd, content.encode())
        except OSError as exc:
            os.close(fd)
            logger.warning("otel-tracker could not lock %s: %s", self.path, exc)
            return False
        self._fd = fd
        _held.add(self)
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_close_in_child)
            _fork_hook_installed = True
        return True

    def release(self) -> None:
        """Drop the lock (the file stays, so readers can still probe it)."""
        if self._fd is None:
            return
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._forget()

    def _forget(self) -> None:
        fd, self._fd = self._fd, None
        _held.discard(self)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def lock_is_held(path: Path) -> bool | None:
    """Whether a live process holds the run lock at ``path``.

    ``None`` when it cannot be told (no lock file, no ``fcntl``, unreadable).
    """
    if fcntl is None:
        return None
    try:
        # non-blocking and not through a symlink: a FIFO planted as .lock must not hang a reader
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def process_identity(process: Any = None) -> dict[str, Any]:
    """pid, parent pid and start time of a process (default: this one).

    Without psutil the start time is unknown; readers then rely on the lock.
    """
    if process is None:
        try:
            import psutil

            process = psutil.Process()
        except Exception:
            return {"pid": os.getpid(), "ppid": os.getppid(), "start_time": None}
        ppid: int | None = os.getppid()
    else:
        ppid = None
    try:
        start = process.create_time()
    except Exception:
        start = None
    return {"pid": process.pid, "ppid": ppid, "start_time": start}
