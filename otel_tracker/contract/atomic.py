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
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..values import clean_texts

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
    try:
        return (text + "\n").encode()
    except UnicodeEncodeError:
        # a name that was not UTF-8 where it came from (a file name, an argv item):
        # kept readable as \xff rather than losing the whole file
        return dump_json(clean_texts(doc), indent=indent)


class FragmentEncoder:
    """:func:`dump_json` for a document rewritten many times whose long lists
    (a manifest's steps, its ETA log) mostly repeat: each item's encoding is kept
    and reused while the item is the same object or an equal one, so a write
    costs the items that changed, not the whole run. The output is byte for byte
    what :func:`dump_json` gives.
    """

    def __init__(self, *paths: tuple[str, ...]) -> None:
        self._paths = paths
        # per list, last call's items (kept alive, so that no new item can reuse the
        # id of an old one), their encodings, and the encodings by item id: a list
        # that slides, like the capped ETA log, keeps its items but not their positions
        self._items: dict[tuple[str, ...], list[Any]] = {p: [] for p in paths}
        self._parts: dict[tuple[str, ...], list[bytes]] = {p: [] for p in paths}
        self._by_id: dict[tuple[str, ...], dict[int, bytes]] = {p: {} for p in paths}

    def __call__(self, doc: Any) -> bytes:
        try:
            return self._encode(doc)
        except UnicodeEncodeError:
            return dump_json(clean_texts(doc))  # see dump_json

    def _encode(self, doc: Any) -> bytes:
        lists: dict[str, bytes] = {}
        shell = doc
        for i, path in enumerate(self._paths):
            items = _get(shell, path)
            if isinstance(items, list):
                mark = f"\x00otel-tracker-list-{i}\x00"
                lists[json.dumps(mark)] = self._encode_list(path, items)
                shell = _replaced(shell, path, mark)
        # the shell is small; the lists, most of the bytes, are copied once, at the end
        text = json.dumps(shell, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        cuts = []
        for mark in lists:
            if text.count(mark) != 1:  # the mark occurs in the data itself
                return dump_json(doc)
            cuts.append((text.index(mark), mark))
        pieces: list[bytes] = []
        done = 0
        for at, mark in sorted(cuts):
            pieces += (text[done:at].encode(), lists[mark])
            done = at + len(mark)
        pieces += (text[done:].encode(), b"\n")
        return b"".join(pieces)

    def _encode_list(self, path: tuple[str, ...], items: list[Any]) -> bytes:
        # the common case in C: every item seen last time (a few changed at most)
        by_id = self._by_id[path]
        parts: list[Any] = [by_id.get(id(item)) for item in items]
        if None in parts:
            old_items, old_parts = self._items[path], self._parts[path]
            for i, part in enumerate(parts):
                if part is None:
                    item = items[i]
                    if i < len(old_items) and old_items[i] == item:
                        parts[i] = old_parts[i]  # equal but rebuilt
                    else:
                        parts[i] = _compact(item).encode()
        self._items[path] = list(items)
        self._parts[path] = parts
        self._by_id[path] = dict(zip(map(id, items), parts, strict=True))
        return b"[" + b",".join(parts) + b"]"


def _compact(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _replaced(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    # shallow copies along the path: the caller's document is never changed
    head, *rest = path
    return {**doc, head: _replaced(doc[head], tuple(rest), value) if rest else value}


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
# every file the writer opens: never through a planted symlink, never into a child
_OWN = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_owned(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` for a file of the run that this process writes: never through a
    symlink (``ELOOP``), and only a regular file (a FIFO planted there would block
    the open or the writes); ``OSError`` otherwise."""
    fd = os.open(path, flags | _OWN | os.O_NONBLOCK, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_temp(path: Path, data: bytes, fsync: bool) -> Path:
    """``data`` in a new hidden temp file beside ``path`` (to be renamed onto it)."""
    # pid + counter: unique even for a write re-entered from a signal handler; random,
    # and created exclusively: a name planted in advance is never written through
    for _ in range(8):
        tmp = path.with_name(
            f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{next(_temp_counter)}"
            f".{secrets.token_hex(4)}{TEMP_SUFFIX}"
        )
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OWN, 0o644)
            break
        except FileExistsError:
            continue
    else:
        raise OSError(errno.EEXIST, "no free temporary file name", str(path))
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _commit(tmp: Path, path: Path, fsync: bool) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


def write_json_atomic(
    path: Path, doc: Any, *, fsync: bool = True, indent: int | None = None
) -> None:
    """Write ``doc`` to ``path`` atomically; raises ``OSError`` / ``ValueError``."""
    _commit(write_temp(path, dump_json(doc, indent=indent), fsync), path, fsync)


def write_text_atomic(path: Path, text: str, *, fsync: bool = True) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically; raises ``OSError``."""
    _commit(write_temp(path, text.encode("utf-8"), fsync), path, fsync)


def unlink_quietly(path: Path) -> None:
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
        from .heartbeat import GenerationFile, generation_path

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
        _commit(tmp, self.path, fsync)
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
