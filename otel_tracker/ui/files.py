"""Files of a run the page may show: artifacts and logs, never anything else.

A request names a run id and a path relative to that run's directory. It is
refused (``None``, a 404 for the page) when the run id is not a run directory
name directly under the root, when the path is absolute or climbs out (``..``),
when any component on the way is a symbolic link, or when the file is not a
regular file: what is served is always a plain file inside the run's own
directory, whatever the files in it point at.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from ..contract.jsonfile import FileProblem, open_regular
from ..contract.paths import RUN_ID_PATTERN

LOG_NAMES = ("stdout", "stderr")
MAX_LOG_TAIL = 64 * 1024  # what the page shows first of a log; more follows live


def run_dir(root: Path, run_id: str) -> Path | None:
    """The directory of ``run_id`` under ``root``, if it is a real one."""
    if not RUN_ID_PATTERN.match(run_id) or "/" in run_id or run_id in (".", ".."):
        return None
    path = root / run_id
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(info.st_mode) else None


def safe_file(root: Path, run_id: str, relative: str) -> Path | None:
    """``relative`` inside the run's directory, if it may be served (see above)."""
    base = run_dir(root, run_id)
    if base is None or not relative or "\x00" in relative:
        return None
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or any(p in ("..", ".", "") for p in parts):
        return None
    path = base
    for index, part in enumerate(parts):
        path = path / part
        try:
            info = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            return None
        last = index == len(parts) - 1
        if not last and not stat.S_ISDIR(info.st_mode):
            return None
        if last and not stat.S_ISREG(info.st_mode):
            return None
    return path


def inside_run(run_directory: Path, path_text: str) -> str | None:
    """An artifact's recorded path relative to its run directory, or None when it
    lies elsewhere (artifacts may be registered anywhere; only these are served)."""
    try:
        path = Path(path_text)
        if not path.is_absolute():
            path = run_directory / path
        relative = os.path.relpath(os.path.normpath(path), os.path.normpath(run_directory))
    except (TypeError, ValueError):
        return None
    if relative.startswith("..") or os.path.isabs(relative) or relative == ".":
        return None
    return relative.replace(os.sep, "/")


def log_path(root: Path, run_id: str, name: str) -> Path | None:
    if name not in LOG_NAMES:
        return None
    return safe_file(root, run_id, f"logs/{name}.log")


def read_from(
    path: Path, offset: int | None, limit: int = MAX_LOG_TAIL, until: int | None = None
) -> tuple[str, int]:
    """Text of ``path`` from ``offset`` (``None``: the last ``limit`` bytes before
    ``until``, or before its end), up to the last whole line, and the offset after
    it. A file that shrank starts again."""
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            if until is not None and until <= size:
                size = until
            if offset is None:
                offset = max(0, size - limit)
            elif offset > size:
                offset = 0  # truncated or replaced
            file.seek(offset)
            data = file.read(max(0, min(size - offset, 4 * limit)))
    except FileProblem:
        return "", offset or 0
    end = data.rfind(b"\n")
    if end < 0:
        return "", offset
    return data[: end + 1].decode("utf-8", "replace"), offset + end + 1
