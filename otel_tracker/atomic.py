"""Crash-safe JSON files: temp file in the same directory, fsync, rename.

A reader sees either the previous or the next complete version, never a torn
one, even if the writer is SIGKILLed mid-write.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def dump_json(doc: Any, *, indent: int | None = None) -> bytes:
    """Canonical encoding: UTF-8, trailing newline, no NaN.

    Compact by default: with ``indent`` Python's json falls back to its pure-Python
    encoder, about ten times slower, and a 500-step manifest is rewritten on
    every transition. ``jq .`` or ``otel-tracker show`` make it readable.
    """
    if indent is None:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    else:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=indent)
    return (text + "\n").encode()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


_temp_counter = itertools.count()


def _write_temp(path: Path, data: bytes, fsync: bool) -> Path:
    # pid + counter: unique even for a write re-entered from a signal handler.
    tmp = path.with_name(
        f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{next(_temp_counter)}{TEMP_SUFFIX}"
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _commit(tmp: Path, path: Path, fsync: bool) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


def write_json_atomic(path: Path, doc: Any, *, fsync: bool = True) -> None:
    """Write ``doc`` to ``path`` atomically; raises ``OSError`` / ``ValueError``."""
    _commit(_write_temp(path, dump_json(doc), fsync), path, fsync)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class ManifestFileWriter:
    """Rewrites one JSON file atomically on behalf of the process that owns it.

    - Only the owning pid writes: a forked child that inherited this object
      never touches its parent's file.
    - Never raises: an unwritable directory or a full disk is logged once per
      kind of error and the caller goes on; the next write retries.
    - A write that was overtaken by a newer one (e.g. a signal handler that
      finalized the run while the main thread was mid-write) is dropped
      instead of replacing the newer content.
    """

    def __init__(self, path: Path, owner_pid: int | None = None, fsync: bool = True) -> None:
        self.path = path
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self._fsync = fsync
        self._lock = threading.RLock()
        self._generations = itertools.count(1)
        self._committed = 0
        self._warned: set[int] = set()
        self.failures = 0
        self.last_error: str | None = None

    def write(self, doc: Any) -> bool:
        """Write ``doc``; return whether it reached the disk."""
        if os.getpid() != self.owner_pid:
            return False
        with self._lock:
            generation = next(self._generations)
            try:
                data_doc = doc() if callable(doc) else doc
                self._write_if_newest(data_doc, generation)
            except (OSError, ValueError, TypeError) as exc:
                self._report(exc)
                return False
            return True

    def _write_if_newest(self, doc: Any, generation: int) -> None:
        tmp = _write_temp(self.path, dump_json(doc), self._fsync)
        if generation < self._committed:
            _unlink_quietly(tmp)  # a newer version landed while this one was written
            return
        _commit(tmp, self.path, self._fsync)
        self._committed = generation

    def _report(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        key = getattr(exc, "errno", None) or -1
        if key in self._warned:
            return
        self._warned.add(key)
        hint = " (disk full?)" if key == errno.ENOSPC else ""
        logger.warning(
            "otel-tracker could not write %s%s: %s; the run goes on and later writes will retry",
            self.path,
            hint,
            exc,
        )
