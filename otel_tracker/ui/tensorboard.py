"""``otel-tracker tensorboard``: TensorBoard over runs' event directories.

A run's event directories are the mirror's (``<run>/tensorboard``, with
``--tensorboard``) and those its command wrote (its ``tensorboard`` artifacts, where
they still exist). TensorBoard runs in this process, on an ephemeral port of
127.0.0.1 by default, with its Rust data server off (``--load_fast=false``), so
stopping this process (Ctrl-C, SIGTERM, its terminal closing) leaves no process
behind. TensorBoard itself is imported here, lazily (the ``tensorboard`` extra).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.paths import outermost
from ..errors import MissingExtraError, OtelTrackerError

logger = logging.getLogger(__name__)

MIRROR_DIR = "tensorboard"  # where the mirror writes, in the run's directory
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class EventDir:
    """One directory TensorBoard shows, under the name it shows it by."""

    name: str
    path: Path


def event_dirs(view: Any) -> list[EventDir]:
    """The event directories of one loaded run (a ``RunView``), those that exist."""
    run_dir = Path(view.doc.get("run_dir") or view.path)
    found: list[EventDir] = []
    mirror = run_dir / MIRROR_DIR
    if mirror.is_dir() and not mirror.is_symlink():
        found.append(EventDir(f"{view.run_id}/mirror", mirror))
    cwd = (view.doc.get("process") or {}).get("cwd")
    for artifact in view.doc.get("artifacts") or ():
        if not isinstance(artifact, dict) or artifact.get("kind") != "tensorboard":
            continue
        path = Path(str(artifact.get("path")))
        if artifact.get("pruned_at") or not path.is_dir() or path.is_symlink():
            continue
        found.append(EventDir(f"{view.run_id}/{_label(path, cwd)}", path))
    return _outermost(found)


def _label(path: Path, cwd: Any) -> str:
    try:
        shown = str(path.relative_to(cwd)) if isinstance(cwd, str) else path.name
    except ValueError:
        shown = path.name
    return _UNSAFE_NAME.sub("_", shown).strip("/") or "events"


def _outermost(dirs: list[EventDir]) -> list[EventDir]:
    """TensorBoard walks each directory: one inside another (``add_hparams``' session
    folder in its writer's) is shown through its parent, not twice."""
    kept = outermost(d.path for d in dirs)  # a path named twice is kept once
    return [next(d for d in dirs if d.path == path) for path in kept]


def logdir_spec(dirs: Sequence[EventDir]) -> str:
    """TensorBoard's ``--logdir_spec`` (``name:path,...``). A path with a comma cannot
    be said in it: :class:`OtelTrackerError` names it."""
    for d in dirs:
        if "," in str(d.path):
            raise OtelTrackerError(
                f"TensorBoard cannot be given {d.path}: its --logdir_spec has no way to "
                "quote a comma; rename the directory or run tensorboard --logdir on it"
            )
    return ",".join(f"{d.name}:{d.path}" for d in dirs)


class TensorBoardServer:
    """TensorBoard in this process: :meth:`start` serves and returns the URL."""

    def __init__(self, dirs: Sequence[EventDir], *, host: str = "127.0.0.1", port: int = 0):
        if not dirs:
            raise OtelTrackerError("no TensorBoard event directories to serve")
        self.dirs = list(dirs)
        self.host = host
        self.port = port
        self.url: str | None = None

    def start(self) -> str:
        try:
            from tensorboard import program
        except ImportError as exc:
            raise MissingExtraError(
                "tensorboard", "tensorboard", "otel-tracker tensorboard"
            ) from exc
        board = program.TensorBoard()
        board.configure(
            argv=[
                "tensorboard",
                f"--logdir_spec={logdir_spec(self.dirs)}",
                f"--host={self.host}",
                f"--port={self.port}",
                "--load_fast=false",  # no data-server subprocess to outlive us
            ]
        )
        try:
            self.url = str(board.launch())
        except Exception as exc:  # TensorBoard's own "port in use" and the like
            raise OtelTrackerError(f"TensorBoard did not start: {exc}") from None
        return self.url


def serve_until_stopped(
    server: TensorBoardServer, ready: Callable[[str], None], signals: Iterable[int] = STOP_SIGNALS
) -> int:
    """Start ``server``, call ``ready(url)``, and wait for Ctrl-C, SIGTERM or SIGHUP
    (the terminal closing); the signal's number. Only from the main thread."""
    stopped = threading.Event()
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        stopped.set()

    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        ready(server.start())
        while not stopped.wait(3600):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0]
