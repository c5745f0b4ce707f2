"""``ManifestFileWriter``: one process's JSON file, rewritten atomically and in order,
whose heartbeats another process (the sampling helper) may write (see
:mod:`otel_tracker.contract.heartbeat`)."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import commit, dump_json, unlink_quietly, write_temp
from .heartbeat import GenerationFile, generation_path

logger = logging.getLogger(__name__)


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

    def __init__(
        self,
        path: Path,
        owner_pid: int | None = None,
        fsync: bool = True,
        encode: Callable[[Any], bytes] = dump_json,
    ) -> None:
        self.path = path
        self._encode = encode
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self._fsync = fsync
        self._lock = threading.RLock()
        self._generations = itertools.count(1)
        self._committed = 0
        self._warned: set[int] = set()
        self.failures = 0
        self.last_error: str | None = None
        # the number of state changes, published while a helper writes heartbeats
        self._state = 0
        self._shared: Any = None

    def write(self, doc: Any, *, durable: bool = True) -> bool:
        """Write ``doc``; return whether it reached the disk.

        ``durable=False`` skips the fsyncs (for a refresh that changes no state, such
        as a heartbeat): the rename is still atomic, so a killed process leaves the
        previous or the new version; only a power loss could lose the refresh. Such a
        refresh is skipped (``False``) while another write holds the file.
        """
        if os.getpid() != self.owner_pid:
            return False
        # A refresh while another write is under way is moot, and must not wait: the
        # sampler thread that writes heartbeats is joined when the run ends, maybe
        # from a signal handler that interrupted the very write holding this lock.
        if not self._lock.acquire(blocking=durable):
            return False
        try:
            generation = next(self._generations)
            if durable and self._shared is not None:
                self._publish_state()
            try:
                data_doc = doc() if callable(doc) else doc
                self._write_if_newest(data_doc, generation, self._fsync and durable)
            except (OSError, ValueError, TypeError) as exc:
                self._report(exc)
                return False
            return True
        finally:
            self._lock.release()

    def share(self) -> Path | None:
        """Let another process write heartbeats of this file (see ``heartbeat.py``):
        the generation file it must check, or ``None`` if that is not possible here."""
        with self._lock:
            if self._shared is None and os.getpid() == self.owner_pid:
                try:
                    self._shared = GenerationFile(generation_path(self.path), self._state)
                except OSError as exc:
                    logger.debug("heartbeats stay in this process: %s", exc)
            return self._shared.path if self._shared is not None else None

    @property
    def shared(self) -> bool:
        """Whether another process writes this file's heartbeats (see :meth:`share`)."""
        return self._shared is not None

    def unshare(self) -> None:
        """End :meth:`share` (the other process is gone) and remove the generation file."""
        with self._lock:
            shared, self._shared = self._shared, None
            if shared is not None:
                shared.close()
                unlink_quietly(shared.path)

    def heartbeat_payload(self, doc: Any) -> tuple[int, bytes] | None:
        """``(state number, encoded doc)`` for the process that writes heartbeats, or
        ``None`` when this process must write them itself."""
        if os.getpid() != self.owner_pid or self._shared is None:
            return None
        if not self._lock.acquire(blocking=False):
            return None  # a write is under way (see write): this refresh is moot
        try:
            return self._state, self._encode(doc() if callable(doc) else doc)
        except (ValueError, TypeError) as exc:
            self._report(exc)
            return None
        finally:
            self._lock.release()

    def report(self, exc: OSError) -> None:
        """A failed write of this file elsewhere (a heartbeat): warned once per kind."""
        with self._lock:
            self._report(exc)

    def _publish_state(self) -> None:
        # before the write: from here on, a heartbeat encoded earlier is dropped
        self._state += 1
        try:
            self._shared.publish(self._state)
        except OSError as exc:
            logger.debug("heartbeats move back into this process: %s", exc)
            self._shared.close()
            self._shared = None

    def _write_if_newest(self, doc: Any, generation: int, fsync: bool) -> None:
        tmp = write_temp(self.path, self._encode(doc), fsync)
        if generation < self._committed:
            unlink_quietly(tmp)  # a newer version landed while this one was written
            return
        commit(tmp, self.path, fsync)
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
