"""One watcher of the runs root per server, whatever the number of pages open.

It says which run directories changed. With inotify (through ``watchfiles``) it
watches the root itself (a run appears or goes) and the directories of the runs
that live or that a page shows (their manifest, telemetry and logs change), not
the whole tree: a root of 10,000 finished runs costs a handful of watches. Where
inotify is not available (``watchfiles`` missing, a network filesystem, the
watch limit reached) or ``poll=True``, it polls instead: the root's own mtime (a
run added or removed) and the files of the watched runs, every
:data:`POLL_INTERVAL_S`. Either way the server also re-reads live runs every
second: a SIGKILLed run changes no file, only its lock and heartbeat tell.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
WATCHED_FILES = ("manifest.json", "telemetry.jsonl", "logs/stdout.log", "logs/stderr.log")


class RootWatcher:
    """Calls ``on_change(run_ids, root_changed)`` from the event loop for every batch
    of changes; :meth:`watch` sets the run directories watched beyond the root."""

    def __init__(
        self,
        root: Path,
        on_change: Callable[[set[str], bool], None],
        *,
        poll: bool = False,
    ) -> None:
        self.root = root
        self.on_change = on_change
        self.poll = poll
        self.mode = "polling" if poll else "inotify"
        self._runs: frozenset[str] = frozenset()
        self._restart = asyncio.Event()
        self._stop = asyncio.Event()
        self._signatures: dict[str, tuple[tuple[int, int], ...]] = {}
        self._root_signature: int | None = None

    def watch(self, run_ids: Iterable[str]) -> None:
        runs = frozenset(run_ids)
        if runs != self._runs:
            self._runs = runs
            self._restart.set()

    def stop(self) -> None:
        self._stop.set()
        self._restart.set()

    async def run(self) -> None:
        if not self.poll:
            try:
                await self._inotify()
            except Exception as exc:  # no watchfiles, no inotify, the watch limit...
                logger.warning("otel-tracker ui: file watching unavailable (%s); polling", exc)
            if self._stop.is_set():
                return
            self.mode = "polling"
        await self._polling()

    async def _inotify(self) -> None:
        import watchfiles

        while not self._stop.is_set():
            self._restart.clear()
            paths = [str(self.root)]
            for run_id in sorted(self._runs):
                for sub in ("", "logs"):
                    path = self.root / run_id / sub
                    if path.is_dir() and not path.is_symlink():
                        paths.append(str(path))
            async for changes in watchfiles.awatch(
                *paths,
                stop_event=self._restart,  # type: ignore[arg-type]
                recursive=False,
                debounce=100,
                step=20,
                rust_timeout=1_000,
                yield_on_timeout=False,
                ignore_permission_denied=True,
            ):
                runs, root_changed = set(), False
                for _change, path in changes:
                    run_id, is_root_entry = self._run_of(path)
                    if run_id is not None:
                        runs.add(run_id)
                    root_changed = root_changed or is_root_entry
                if runs or root_changed:
                    self.on_change(runs, root_changed)

    def _run_of(self, path: str) -> tuple[str | None, bool]:
        try:
            relative = Path(path).relative_to(self.root)
        except ValueError:
            return None, False
        parts = relative.parts
        if not parts:
            return None, True
        return parts[0], len(parts) == 1

    async def _polling(self) -> None:
        while not self._stop.is_set():
            runs, root_changed = set(), False
            root_signature = _mtime(self.root)
            if root_signature != self._root_signature:
                self._root_signature, root_changed = root_signature, True
            for run_id in self._runs:
                signature = tuple(_stat(self.root / run_id / name) for name in WATCHED_FILES)
                if self._signatures.get(run_id) != signature:
                    self._signatures[run_id] = signature
                    runs.add(run_id)
            for gone in set(self._signatures) - self._runs:
                del self._signatures[gone]
            if runs or root_changed:
                self.on_change(runs, root_changed)
            try:
                await asyncio.wait_for(self._stop.wait(), POLL_INTERVAL_S)
            except asyncio.TimeoutError:
                pass


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)
