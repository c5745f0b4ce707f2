"""The server's one view of the root, shared by every page: rows of runs, the
telemetry and logs of the runs pages show, and who gets which change.

All file reading happens on one worker thread, in order (so a page that subscribes
gets the charts up to an offset and then exactly the samples after it); the event
loop only sends. A row is kept per run and re-read when its manifest changes (or,
for a live run, every second: liveness is a matter of time); a page gets a run's
row again only when it differs from the last one sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.telemetry_form import TELEMETRY_NAME
from ..errors import RunNotFoundError
from ..history.progress_view import LIVE
from ..history.store import BadManifestError, RunStore
from .files import log_names, read_log, run_dir
from .telemetry import TelemetryFeed, sample_payload
from .views import RunQuery, run_detail, run_row

logger = logging.getLogger(__name__)

LIVE_REFRESH_S = 1.0
MAX_FEEDS = 8  # telemetry kept parsed beyond the runs pages show (a few recent ones)
MAX_DETAILS = 64  # run pages' reports kept (one per run and kind)
MAX_SAMPLES_PUSHED = 1_000  # more new samples at once: the thinned charts instead
CHART_BUCKETS = 600  # min/max pairs per series: more than a chart has pixels

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class Client:
    """One open page: what it watches, and how to send to it."""

    send: Send
    runs_page: bool = False
    runs: set[str] = field(default_factory=set)  # run pages / compare
    closing: bool = False  # fell behind: told to reload, sent nothing more
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(256))


@dataclass
class _Cached:
    row: dict[str, Any]
    signature: tuple[int, int, int]
    read_at: float


class Hub:
    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.root = store.root
        self._rows: dict[str, _Cached] = {}
        self._feeds: dict[str, TelemetryFeed] = {}
        self._details: dict[tuple[str, bool], tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._logs: dict[tuple[str, str], int] = {}
        self._problems: dict[str, str] = {}
        self._log_runs: set[str] = set()  # runs whose logs pages follow
        self._aligned: dict[str, float] = {}  # compare pages: a run's charts from its start
        # run directories seen before their first manifest: no file event may follow
        # that a watcher of the root sees (the manifest is written inside the directory)
        self._starting: set[str] = set()
        self.clients: set[Client] = set()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "otel-tracker-ui")
        self._names: list[str] | None = None  # newest first; re-listed when the root changes

    # -- the worker thread ------------------------------------------------------------
    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def names(self, refresh: bool = False) -> list[str]:
        if refresh or self._names is None:
            self._names = self.store.run_dir_names()
        return self._names

    def row(self, run_id: str, *, force: bool = False) -> dict[str, Any] | None:
        """The run's row, re-read when its files changed (or it lives and a second passed)."""
        path = self.root / run_id
        signature = _signature(path)
        cached = self._rows.get(run_id)
        now = time.monotonic()
        if cached is not None and cached.signature == signature and not force:
            live = cached.row.get("status") in LIVE
            if not live or now - cached.read_at < LIVE_REFRESH_S:
                return cached.row
        try:
            view = self.store.load(path)
        except BadManifestError as exc:
            if exc.missing:  # being created: read again on every refresh until it has one
                self._starting.add(run_id)
            else:
                self._problems[run_id] = str(exc)
            self._rows.pop(run_id, None)
            return None
        except OSError:
            self._rows.pop(run_id, None)
            return None
        self._starting.discard(run_id)
        try:
            row = run_row(view)
        except Exception as exc:  # a field of the wrong type the store did not check
            self._problems[run_id] = f"{path / 'manifest.json'}: cannot be shown ({exc!r})"
            self._rows.pop(run_id, None)
            return None
        self._problems.pop(run_id, None)
        self._rows[run_id] = _Cached(row, signature, now)
        return row

    def query(self, query: RunQuery, offset: int, limit: int) -> dict[str, Any]:
        """A page of matching rows, newest first, and whether there are more: rows
        come from the cache; only runs never read (or changed) are read."""
        rows: list[dict[str, Any]] = []
        skipped = 0
        more = False
        names = self.names(refresh=True)
        for name in names:
            row = self.row(name)
            if row is None or not query.matches(row):
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(rows) == limit:
                more = True
                break
            rows.append(row)
        return {
            "runs": rows,
            "offset": offset,
            "more": more,
            "total_runs": len(names),
            "problems": sorted(self._problems.values())[:20],
        }

    def warm(self, start: int, count: int) -> bool:
        """Read the rows of runs ``start`` to ``start + count`` (newest first) once, so
        that later searches use the cache; whether there are more. A start-up job in
        small pieces: a page's request never waits behind all of them."""
        names = self.names()
        for name in names[start : start + count]:
            if name not in self._rows:
                self.row(name)
        return start + count < len(names)

    def detail(self, run_id: str, with_analysis: bool) -> dict[str, Any]:
        """The run page's data, computed once per change of the run's files (however
        many pages ask); a live run's analysis waits for its end unless asked."""
        signature = _signature(self.root / run_id)
        key = (run_id, with_analysis)
        cached = self._details.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        detail = self._detail(run_id, with_analysis)
        if len(self._details) >= MAX_DETAILS:
            self._details.clear()
        self._details[key] = (signature, detail)
        return detail

    def _detail(self, run_id: str, with_analysis: bool) -> dict[str, Any]:
        view = self.store.get(run_id)
        analysis = None
        if with_analysis:
            from ..analysis.recommend import analyze

            try:
                analysis = analyze(view.doc, root=self.root, store=self.store)
            except Exception as exc:  # a damaged baseline: the page still shows the run
                analysis = {"error": str(exc)}
        detail = run_detail(view, analysis)
        return json.loads(json.dumps(detail, default=str))

    def feed(self, run_id: str) -> TelemetryFeed:
        feed = self._feeds.get(run_id)
        if feed is None:
            if len(self._feeds) >= MAX_FEEDS:
                watched = {r for c in self.clients for r in c.runs}
                for old in [r for r in self._feeds if r not in watched][: len(self._feeds) // 2]:
                    del self._feeds[old]
            feed = self._feeds[run_id] = TelemetryFeed(self.root / run_id / TELEMETRY_NAME)
            feed.catch_up()
        elif not any(run_id in c.runs for c in self.clients):
            feed.catch_up()
        # else: the next refresh reads what is new and sends it to every page that
        # watches the run, this one included; read here, it would reach none of them
        return feed

    def charts(self, run_id: str, buckets: int, aligned: bool = False) -> dict[str, Any]:
        """``run_id``: a run directory's name under the root (the server checks it)."""
        if run_dir(self.root, run_id) is None:
            raise RunNotFoundError(f"no run {run_id!r} under {self.root}")
        since = None
        if aligned:
            row = self.row(run_id)
            from ..timeparse import parse_timestamp

            since = parse_timestamp((row or {}).get("started_at"))
            if since is not None:
                self._aligned[run_id] = since
        return self.feed(run_id).charts(buckets, since)

    def log_tails(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The end of each of the run's logs (the HTTP API: nothing is followed)."""
        out = {}
        for name in log_names(self.root, run_id):
            text, offset = read_log(self.root, run_id, name, None)
            out[name] = {"text": text, "offset": offset}
        return out

    def subscribe(
        self, run_id: str, buckets: int, aligned: bool, with_logs: bool
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """A page starts watching a run: its charts and (for a run page) the end of
        each log, up to where the pages already watching it have been sent, so that
        every later sample and line reaches it exactly once (one worker call: no
        refresh runs in between)."""
        charts = self.charts(run_id, buckets, aligned)
        logs: dict[str, dict[str, Any]] = {}
        if with_logs:
            followed = run_id in self._log_runs
            for name in log_names(self.root, run_id):
                shared = self._logs.get((run_id, name))
                if shared is None and followed:
                    # new since the last refresh: the next one sends all of it to all
                    self._logs[(run_id, name)] = 0
                    continue
                text, offset = read_log(self.root, run_id, name, None, until=shared)
                self._logs.setdefault((run_id, name), offset)
                logs[name] = {"text": text, "offset": offset}
            self._log_runs.add(run_id)
        return charts, logs

    # -- one refresh: what changed since the last ---------------------------------------
    def refresh(self, changed: set[str], root_changed: bool, watched: set[str]) -> list[Any]:
        """The events for the pages: new or changed rows, runs gone, new samples and
        log lines of the watched runs."""
        events: list[Any] = []
        names = self.names(refresh=root_changed)
        if root_changed:
            present = set(names)
            for gone in [r for r in self._rows if r not in present]:
                del self._rows[gone]
                self._feeds.pop(gone, None)
                events.append(("removed", gone, None))
            for gone in [r for r in self._problems if r not in present]:
                del self._problems[gone]
            changed |= {n for n in names[:50] if n not in self._rows}  # new runs are newest
            self._starting &= present
        changed |= self._starting
        live = {r for r, c in self._rows.items() if c.row.get("status") in LIVE}
        for run_id in sorted(changed | live):
            before = self._rows.get(run_id)
            old = before.row if before else None
            try:
                row = self.row(run_id, force=run_id in changed)
            except Exception:  # one run's trouble is never every page's
                logger.debug("reading run %s failed", run_id, exc_info=True)
                self._rows.pop(run_id, None)
                continue
            if row is not None and row != old:
                events.append(("row", run_id, row))
        for run_id in watched:
            feed = self._feeds.get(run_id)
            if feed is not None:
                samples = feed.read_new()
                if len(samples) > MAX_SAMPLES_PUSHED or feed.behind:
                    # a backlog (a huge file being caught up): the thinned charts again
                    charts = feed.charts(CHART_BUCKETS, self._aligned.get(run_id))
                    events.append(("charts", run_id, charts))
                elif samples:
                    events.append(("samples", run_id, sample_payload(samples)))
            if run_id in self._log_runs:
                events += self._new_log_lines(run_id)
        for key in [k for k in self._logs if k[0] not in watched]:
            del self._logs[key]  # nobody follows it: a page that comes starts afresh
        self._log_runs &= watched
        return events

    def _new_log_lines(self, run_id: str) -> list[Any]:
        events = []
        for name in log_names(self.root, run_id):
            key = (run_id, name)
            start = self._logs.get(key, 0)  # a log that appeared meanwhile: all of it
            text, offset = read_log(self.root, run_id, name, start)
            self._logs[key] = offset
            if text:
                events.append(("log", run_id, {"name": name, "text": text}))
        return events

    def live_runs(self) -> set[str]:
        return {r for r, c in self._rows.items() if c.row.get("status") in LIVE}


def _signature(path: Path) -> tuple[int, int, int]:
    """What changes when a run's record does: its manifest and its parts."""
    try:
        info = os.stat(path / "manifest.json", follow_symlinks=False)
        manifest = (info.st_mtime_ns, info.st_size)
    except OSError:
        manifest = (0, 0)
    try:
        parts = os.stat(path / "parts", follow_symlinks=False).st_mtime_ns
    except OSError:
        parts = 0
    return (*manifest, parts)
