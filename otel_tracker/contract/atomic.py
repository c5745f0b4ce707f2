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


def fsync_dir(directory: Path) -> None:
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


def commit(tmp: Path, path: Path, fsync: bool) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    if fsync:
        fsync_dir(path.parent)


def write_json_atomic(
    path: Path, doc: Any, *, fsync: bool = True, indent: int | None = None
) -> None:
    """Write ``doc`` to ``path`` atomically; raises ``OSError`` / ``ValueError``."""
    commit(write_temp(path, dump_json(doc, indent=indent), fsync), path, fsync)


def write_text_atomic(path: Path, text: str, *, fsync: bool = True) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically; raises ``OSError``."""
    commit(write_temp(path, text.encode("utf-8"), fsync), path, fsync)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
