"""Reading a run's files (and baselines) without trusting them: the one way in.

A run directory is shared ground: anything in it may be damaged, hand-edited or
planted. Every reader of a manifest, part, baseline or ``telemetry.jsonl`` goes
through :func:`read_bytes` / :func:`read_json`, so none of them can be

* blocked forever by a FIFO (opened non-blocking, then refused: not a regular file),
* led elsewhere by a symbolic link (``O_NOFOLLOW`` on the file itself),
* made to load an unbounded file (every read has a byte limit),
* handed values no reader can format: ``NaN``/``Infinity``, numbers beyond
  :data:`MAX_MAGNITUDE` (``10**400`` is valid JSON and overflows ``float``),
  or strings holding lone surrogates (``"\\ud800"`` cannot be printed or encoded;
  they are kept as the escape text ``\\ud800``).

What is wrong is one :class:`FileProblem` line that names the file. Leaf module:
both the writing and the reading side may import it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError

# No figure a tracker records comes near this (1e18 s is 31 billion years, 1e18 B an
# exabyte), and every reader can format anything below it.
MAX_MAGNITUDE = 1e18
_MAX_INT_TEXT = len(str(int(MAX_MAGNITUDE))) + 1  # digits and a sign
_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class FileProblem(OtelTrackerError):
    """A file a reader cannot use; the message starts with its path."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _open_regular_fd(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file ``path`` and its stat, or one
    :class:`FileProblem` line: no symlink followed, no FIFO waited on."""
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise FileProblem(f"{path}: missing", missing=True) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileProblem(f"{path}: a symbolic link, not followed") from None
        raise FileProblem(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise FileProblem(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise FileProblem(f"{path}: {kind}, not a regular file; not read")
    return fd, info


def read_bytes(path: Path, max_bytes: int, *, tail: bool = False) -> bytes:
    """The bytes of the regular file ``path``: all of them (more than ``max_bytes`` is
    a :class:`FileProblem`), or with ``tail`` only its last ``max_bytes``."""
    fd, info = _open_regular_fd(path)
    try:
        if tail and info.st_size > max_bytes:
            os.lseek(fd, info.st_size - max_bytes, os.SEEK_SET)
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem(f"{path}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        if tail:
            return data[-max_bytes:]
        raise FileProblem(f"{path}: larger than {max_bytes:,} bytes; not read")
    return data


def open_regular(path: Path) -> Any:
    """``path`` opened for reading as a binary file object, on the terms of
    :func:`read_bytes`, for files read line by line (``metrics.jsonl``)."""
    fd, _ = _open_regular_fd(path)
    return os.fdopen(fd, "rb")


def read_json(path: Path, max_bytes: int) -> Any:
    """The JSON document in ``path`` (see the module's docstring for what is refused)."""
    data = read_bytes(path, max_bytes)
    if not data.strip():
        raise FileProblem(f"{path}: empty")
    return loads(data, str(path))


def loads(data: bytes, source: str) -> Any:
    """Parse ``data`` with the bounds of :func:`read_json`; problems name ``source``."""
    try:
        doc = _DECODER.decode(data.decode("utf-8"))
    except _OutOfBounds as exc:
        raise FileProblem(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise FileProblem(f"{source}: not valid JSON ({where})") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, or nested too deeply
        raise FileProblem(f"{source}: not valid JSON ({exc})") from None
    if _SURROGATE_ESCAPE.search(data):
        doc = _without_surrogates(doc)
    return doc


class _OutOfBounds(ValueError):
    pass


def _float(text: str) -> float:
    value = float(text)
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # also False for inf
        raise _OutOfBounds(f"number {text[:20]} is out of range (beyond ±{MAX_MAGNITUDE:.0e})")
    return value


def _int(text: str) -> int:
    # checked on the text first: int() of 10,000 digits is itself slow (and limited)
    if len(text) > _MAX_INT_TEXT or abs(value := int(text)) > MAX_MAGNITUDE:
        raise _OutOfBounds(f"number {text[:20]} is out of range (beyond ±{MAX_MAGNITUDE:.0e})")
    return value


def _constant(text: str) -> Any:
    raise _OutOfBounds(f"{text} is not a number JSON allows")


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_constant)


def _clean(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _without_surrogates(doc: Any) -> Any:
    """``doc`` with every string (keys too) that holds a lone surrogate escaped."""
    if isinstance(doc, str):
        return _clean(doc)
    stack = [doc]
    while stack:  # iterative: the parser allows nesting deeper than a recursive walk
        node = stack.pop()
        if isinstance(node, dict):
            items = [(_clean(k), _clean(v) if isinstance(v, str) else v) for k, v in node.items()]
            node.clear()
            node.update(items)
            stack += [v for _, v in items if isinstance(v, (dict, list))]
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    node[i] = _clean(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return doc
