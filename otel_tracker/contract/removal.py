"""Deleting a run directory so that no reader ever sees half of it.

A run leaves the root's listing in one step, a ``rename`` into ``<root>/.trash/``
(same directory, so the same filesystem: atomic), and only then is deleted. A
deletion killed half-way leaves a partial tree under ``.trash``, which no reader
lists (the name does not look like a run id) and the next deletion empties first.
Nothing here follows a symbolic link: a link planted in a run directory is
unlinked, never entered, so nothing outside the root can be deleted through it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from .paths import RUN_ID_PATTERN

TRASH_DIR = ".trash"


def tree_bytes(path: Path) -> int:
    """The bytes of the regular files under ``path``, links not followed."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    stack.append(Path(entry.path))
                elif stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return total


def remove_run_dir(root: Path, name: str) -> int | None:
    """Take run ``name`` out of ``root`` and delete it; the bytes freed, or ``None``
    when it was gone already (another prune took it first).

    Raises :class:`OtelTrackerError` for a name that is not a run id or an entry
    that is not a real directory (a symbolic link is never removed through)."""
    if not RUN_ID_PATTERN.match(name):
        raise OtelTrackerError(f"{name!r} is not a run id: not removed")
    path = root / name
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None  # removed meanwhile (another prune)
    if not stat.S_ISDIR(info.st_mode):
        raise OtelTrackerError(f"{path} is not a directory (a link?): not removed")
    trash = root / TRASH_DIR
    trash.mkdir(mode=0o700, exist_ok=True)
    target = trash / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.rename(path, target)  # out of every listing, at once
    except FileNotFoundError:
        return None  # another prune renamed it first
    size = tree_bytes(target)
    _delete(target)
    return size


def empty_trash(root: Path) -> int:
    """Finish what killed deletions left under ``<root>/.trash``; the bytes freed.
    An entry of a prune still running (its pid is in the name) is left to it."""
    trash = root / TRASH_DIR
    try:
        entries = list(os.scandir(trash))
    except OSError:
        return 0
    freed = 0
    for entry in entries:
        if _owner_alive(entry.name):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                size = tree_bytes(path)
                _delete(path)
                freed += size
            else:
                path.unlink()
        except OSError:  # another prune is emptying it now, or it is not ours to remove
            continue
    return freed


def _owner_alive(name: str) -> bool:
    """Whether the process that moved ``<run id>.<pid>.<nonce>`` here still runs."""
    parts = name.split(".")
    if len(parts) < 3 or not parts[-2].isdigit():
        return False
    pid = int(parts[-2])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _delete(path: Path) -> None:
    # where rmtree walks by directory file descriptors (Linux), it unlinks the links
    # it meets and cannot be raced into following one; elsewhere it checks, then acts
    if not shutil.rmtree.avoids_symlink_attacks:
        raise OtelTrackerError("this platform's rmtree can be raced into a link: not deleting")
    shutil.rmtree(path, onerror=_gone_is_fine)


def _gone_is_fine(function: Any, path: str, info: Any) -> None:
    """A file something else removed first is removed: anything else is an error."""
    if not isinstance(info[1], FileNotFoundError):
        raise info[1]


PRUNING_MARK = ".otel-tracker-pruning."


def remove_path(location: Path) -> int:
    """Delete one artifact (a file, a link, or a directory tree) the same way as a
    run: renamed to a hidden name beside it first (out of sight at once, and what a
    killed removal leaves is found by :func:`leftovers_of`), then deleted, no link
    followed. The bytes freed; ``FileNotFoundError`` if it is not there."""
    info = location.lstat()
    hidden = location.with_name(
        f".{location.name}{PRUNING_MARK}{os.getpid()}.{secrets.token_hex(4)}"
    )
    os.rename(location, hidden)
    if stat.S_ISDIR(info.st_mode):
        size = tree_bytes(hidden)
        _delete(hidden)
        return size
    os.unlink(hidden)
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def leftovers_of(location: Path) -> list[Path]:
    """What killed removals of ``location`` left beside it (their process is gone)."""
    prefix = f".{location.name}{PRUNING_MARK}"
    try:
        entries = [e for e in os.scandir(location.parent) if e.name.startswith(prefix)]
    except OSError:
        return []
    return [Path(e.path) for e in entries if not _owner_alive(e.name)]


def remove_leftover(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        _delete(path)
    else:
        path.unlink()
