"""Files of a run the page may show: artifacts and logs, never anything else.

A request names a run id and a path relative to that run's directory. It is
refused (``None``, a 404 for the page) when the run id is not a run directory
name directly under the root, when the path is absolute or climbs out (``..``),
when any component on the way is a symbolic link, or when the file is not a
regular file. The file is opened by walking the path one component at a time
from the run directory's descriptor with ``O_NOFOLLOW`` (no check-then-open race:
a component swapped for a link after a check is still refused), and served from
that descriptor.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from ..contract.paths import RUN_ID_PATTERN

MAX_LOG_TAIL = 64 * 1024  # what the page shows first of a log; more follows live
MAX_LOGS = 32  # log files followed per run (a pipeline file writes two per step)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def run_dir(root: Path, run_id: str) -> Path | None:
    """The directory of ``run_id`` under ``root``, if it is a real one."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        return None
    path = root / run_id
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(info.st_mode) else None


def _parts(relative: str) -> tuple[str, ...] | None:
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    path = PurePosixPath(relative)
    if path.is_absolute() or any(p in ("..", ".", "") for p in path.parts):
        return None
    return path.parts


def open_file(root: Path, run_id: str, relative: str) -> int | None:
    """A read descriptor of the regular file ``relative`` inside the run's directory,
    or None (see the module's docstring); the caller closes it."""
    base = run_dir(root, run_id)
    parts = _parts(relative)
    if base is None or parts is None:
        return None
    try:
        fd = os.open(base, _DIR_FLAGS)
    except OSError:
        return None
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                child = os.open(part, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError:  # missing, a link (ELOOP), not a directory...
                return None
            os.close(fd)
            fd = child
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        result, fd = fd, -1
        return result
    finally:
        if fd >= 0:
            os.close(fd)


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


def log_names(root: Path, run_id: str) -> list[str]:
    """The run's logs (``logs/*.log``: ``stdout``, ``stderr``, a pipeline file's
    ``01-extract.stdout``...), by name without ``.log``, sorted."""
    base = run_dir(root, run_id)
    if base is None:
        return []
    try:
        entries = list(os.scandir(base / "logs")) if not (base / "logs").is_symlink() else []
    except OSError:
        return []
    names = sorted(
        e.name[: -len(".log")]
        for e in entries
        if e.name.endswith(".log") and e.is_file(follow_symlinks=False)
    )
    return names[:MAX_LOGS]


def read_log(
    root: Path,
    run_id: str,
    name: str,
    offset: int | None,
    limit: int = MAX_LOG_TAIL,
    until: int | None = None,
) -> tuple[str, int]:
    """Text of ``logs/<name>.log`` from ``offset`` (``None``: the last ``limit`` bytes
    before ``until``, or before its end), up to the last whole line, and the offset
    after it. A file that shrank starts again; a line longer than the read (a
    ``\\r`` progress bar never ending its line) is passed on in pieces."""
    fd = open_file(root, run_id, f"logs/{name}.log")
    if fd is None:
        return "", offset or 0
    with os.fdopen(fd, "rb") as file:
        return read_from_file(file, offset, limit, until)


def read_from_file(
    file: object, offset: int | None, limit: int, until: int | None
) -> tuple[str, int]:
    size = os.fstat(file.fileno()).st_size  # type: ignore[attr-defined]
    if until is not None and until <= size:
        size = until
    if offset is None:
        offset = max(0, size - limit)
    elif offset > size:
        offset = 0  # truncated or replaced
    file.seek(offset)  # type: ignore[attr-defined]
    chunk = 4 * limit
    data = file.read(max(0, min(size - offset, chunk)))  # type: ignore[attr-defined]
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) < chunk:
            return "", offset  # the rest of a line still being written
        end = len(data) - 1  # a line longer than a read: this much of it now
    return data[: end + 1].decode("utf-8", "replace"), offset + end + 1
