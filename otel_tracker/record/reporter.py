"""``ProgressReporter``: step lines, periodic or live progress, and the ETA log.

It listens to the manifest processor's transitions, so the ETA shown at a step
boundary is appended to the manifest's ``eta_log`` in the same atomic write.
Rendering runs on its own thread (or rich's live refresh), never on the hot path.

In live mode the running step is the live region's first line, so its start is
not printed again above it; finished steps, skips and the run's end are. Output
that must not be written behind the live display's back (a wrapped command's,
see :mod:`otel_tracker.launch.child_output`) goes through :meth:`print_output`, and an
unterminated line of it through :meth:`set_open_line`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..clock import iso_utc
from ..config import DEFAULT_STUCK_AFTER_S
from ..contract.document import RunRecord
from ..printable import printable
from ..progress.eta import Eta, estimate, timings_from_manifest
from ..progress.rate import RateEstimator
from ..progress.render import run_end_line, running_line, skip_line, step_line
from ..progress.stuck import stuck_reason
from ..timeparse import parse_timestamp
from .live_output import (
    LiveTextStream,
    Verbatim,
    colours_only,
    display_lock,
    print_above,
    stream_handlers,
    unproxied,
)

logger = logging.getLogger(__name__)
progress_logger = logging.getLogger("otel_tracker.progress")

MAX_ETA_LOG = 2000
LIVE_REFRESH_PER_S = 4


class ProgressReporter:
    """Prints progress for one run; every failure is logged once and swallowed."""

    def __init__(
        self,
        record: RunRecord,
        *,
        mode: str = "auto",
        interval: float = 30.0,
        now_ns: Callable[[], int],
        progress: Callable[[], Any] | None = None,
        stream: IO[str] | None = None,
        stuck_after: float = DEFAULT_STUCK_AFTER_S,
        label: str | None = None,
    ) -> None:
        self.record = record
        # a child that joined a launcher's run: its lines say whose they are, indented
        self._label = f"  [{printable(label)}] " if label else ""
        self.stuck_after = stuck_after
        self._now_ns = now_ns
        self._progress = progress
        self._stream = stream or sys.stderr
        self.interval = interval
        if mode == "auto":
            mode = "live" if _isatty(self._stream) else "plain"
        self.mode = mode
        self._rates: dict[int, float] = {}
        self._estimators: dict[int, RateEstimator] = {}
        self._stop = threading.Event()
        self._step_started = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self._open_lines: dict[str, str] = {}  # a wrapped command's unterminated lines
        self._live_status: list[Any] = []  # the live region's step line and bars
        self._proxies: list[tuple[str, LiveTextStream, Any]] = []  # sys.stdout/err stand-ins
        self._handlers: list[tuple[logging.StreamHandler, Any]] = []  # re-pointed to them
        self._failed = False
        # the machine beside the progress (set once the run's telemetry samples)
        self.resources: Callable[[], str] | None = None
        # finished and pending steps' timings, reused while their dicts are the same
        self._timings: dict[int, tuple[Any, Any]] = {}

    # -- the manifest processor's transitions ---------------------------------------------
    def on_transition(self, event: str, index: int | None, doc: dict[str, Any]) -> None:
        """Called with the record locked and the document about to be written."""
        if self.mode == "off" and event not in ("step_start", "step_end"):
            return
        try:
            self._transition(event, index, doc)
        except Exception:
            self._fail("transition")

    def _transition(self, event: str, index: int | None, doc: dict[str, Any]) -> None:
        now_ns = self._now_ns()
        elapsed = doc.get("elapsed_s") or 0.0
        eta = self.eta(doc, now_ns)
        if event in ("step_start", "step_end") and index is not None:
            step = doc["steps"][index]
            # the moment the document's elapsed time was read, not a later reading: the
            # two fields of an entry agree exactly, however busy the machine
            started_ns = self.record.started_ns
            at_ns = now_ns if started_ns is None else started_ns + int(elapsed * 1e9)
            self.record.eta_log.append(
                {
                    "at": iso_utc(at_ns),
                    "elapsed_s": round(elapsed, 3),
                    "event": "start" if event == "step_start" else "end",
                    "index": index,
                    "step": step.get("name"),
                    "eta_s": None if eta.remaining_s is None else round(eta.remaining_s, 3),
                    "at_least": eta.at_least,
                    "source": eta.source,
                    "unknown_steps": eta.unknown_steps,
                    "step_expected_s": step.get("expected_duration_s"),
                    "step_source": _step_source(step),
                }
            )
            del self.record.eta_log[:-MAX_ETA_LOG]
            doc["eta"]["log"] = list(self.record.eta_log)  # the document being written
            if event == "step_start":
                self._step_started.set()
            if event == "step_end" or self._live is None:  # live: the region shows the start
                self._emit(
                    step_line(doc, index, eta, elapsed, "start" if event == "step_start" else "end")
                )
        elif event == "step_skip" and index is not None:
            self._emit(skip_line(doc, index))
        elif event == "run_end":
            self.stop()
            self._emit(run_end_line(doc))

    def eta(self, doc: dict[str, Any], now_ns: int) -> Eta:
        timings = timings_from_manifest(doc, now_ns / 1e9, self._rates, self._timings)
        return estimate(timings)

    # -- periodic output -------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "live":
            self._start_live()
        elif self.mode in ("plain", "log"):
            self._thread = threading.Thread(
                target=self._loop, name="otel-tracker-progress", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._step_started.set()  # wakes the periodic thread now
        live = self._live
        if live is not None:
            self._restore_streams()  # open lines still go above the display
        self._live = None
        if live is not None:
            try:
                live.stop()
            except Exception:
                self._fail("live stop")

    @property
    def live(self) -> bool:
        """Whether the live display is on (until the run's end line)."""
        return self._live is not None

    def print_output(self, text: str) -> bool:
        """Print ``text`` (whole lines; their colours kept, other escape sequences
        dropped) above the live display; ``False`` when there is none, and the caller
        writes it itself."""
        live = self._live
        if live is None:
            return False
        try:
            # soft_wrap: the terminal wraps a long line, as it would without us
            print_above(live, Verbatim(colours_only(text)), soft_wrap=True)
            return True
        except Exception:
            self._fail("output")
            return False

    def set_open_line(self, key: str, text: str | None) -> None:
        """Show ``text`` (an unterminated line, e.g. a ``\\r`` progress bar) in the
        live region until it is replaced or ``None`` ends it."""
        if text:
            self._open_lines[key] = text
        else:
            self._open_lines.pop(key, None)

    def _loop(self) -> None:
        """Off a terminal: each step's first in-step line soon after it starts, then at
        a growing interval up to the configured one (see :func:`plain_delays`)."""
        delays = plain_delays(self.interval)
        due = time.monotonic() + next(delays)
        while not self._stop.is_set():
            # woken every OBSERVE_S between lines: the rate sees when counts change
            started = self._step_started.wait(min(OBSERVE_S, max(0.0, due - time.monotonic())))
            if self._stop.is_set():
                return
            if started:  # a new step: its own first line comes a few seconds in
                self._step_started.clear()
                delays = plain_delays(self.interval)
                due = time.monotonic() + next(delays)
                continue
            if time.monotonic() < due:
                try:
                    self._observe_counts()
                except Exception:
                    self._fail("rate reading")
                continue
            due = time.monotonic() + next(delays)
            try:
                line = self.current_line()
                if line:
                    machine = self._resource_text()
                    self._emit(f"{line} · {machine}" if machine else line)
            except Exception:
                self._fail("periodic line")

    def _snapshot(self) -> tuple[dict[str, Any], int]:
        now_ns = self._now_ns()
        with self.record.lock:
            doc = self.record.to_dict(now_ns=now_ns, progress=self._progress)
        return doc, now_ns

    def _observe_counts(self) -> None:
        """Between lines, only the running steps' counters (no manifest document):
        the whole document is built only for a step seen for the first time."""
        counts = self._progress() if self._progress is not None else {}
        if any(index not in self._estimators for index in counts):
            doc, now_ns = self._snapshot()
            self._update_rates(doc, now_ns / 1e9)
            return
        now_s = self._now_ns() / 1e9
        for index, (completed, _total, _unit) in counts.items():
            self._observe(index, now_s, completed)

    def _update_rates(self, doc: dict[str, Any], now_s: float) -> None:
        for step in doc["steps"]:
            if step["status"] != "running":
                continue
            index = step["index"]
            if index not in self._estimators:
                started = parse_timestamp(step.get("started_at"))
                self._estimators[index] = RateEstimator(started if started is not None else now_s)
            self._observe(index, now_s, step["progress"]["completed"] or 0)

    def _observe(self, index: int, now_s: float, completed: int) -> None:
        estimator = self._estimators[index]
        estimator.observe(now_s, completed)
        rate = estimator.rate()
        if rate is None:
            self._rates.pop(index, None)
        else:
            self._rates[index] = rate

    def current_line(self) -> str | None:
        """The running step's line now (``None`` between steps)."""
        doc, now_ns = self._snapshot()
        self._update_rates(doc, now_ns / 1e9)
        running = [s for s in doc["steps"] if s["status"] == "running"]
        if not running:
            return None
        step = running[-1]
        eta = self.eta(doc, now_ns)
        line = running_line(
            doc, step["index"], eta, doc.get("elapsed_s") or 0.0, self._rates.get(step["index"])
        )
        return self._flag_stuck(line, doc, now_ns)

    def _flag_stuck(self, line: str, doc: dict[str, Any], now_ns: int) -> str:
        reason = stuck_reason(doc, now_ns / 1e9, self.stuck_after)
        return f"{line} STUCK: {reason}" if reason else line

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self._stream, highlight=False)
        reporter = self

        class _View:
            def __rich__(self) -> Any:
                return reporter._live_view()

        self._live = Live(
            _View(),
            console=console,
            # refreshed by our thread: rich's own would build the view under the display's
            # lock, and the view needs the record's lock, which a step transition holds
            # while it prints (the opposite order: a deadlock)
            auto_refresh=False,
            transient=True,
            # ours instead (see _redirect_streams): rich's parses every line, turns each
            # flush of a "\r" progress bar into a line and prints without the lock
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()
        self._redirect_streams()
        self._thread = threading.Thread(
            target=self._live_loop, args=(self._live,), name="otel-tracker-progress", daemon=True
        )
        self._thread.start()

    def _redirect_streams(self) -> None:
        """The pipeline's own prints and log lines go above the live region, not
        through it, where they reach this terminal: ``python train.py > out.log``
        keeps its prints in out.log (code that kept a reference to the original
        ``sys.stdout`` bypasses this)."""
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if _isatty(unproxied(current)) and not isinstance(current, LiveTextStream):
                proxy = LiveTextStream(self, name, current)
                setattr(sys, name, proxy)
                self._proxies.append((name, proxy, current))
        replaced = {id(original): proxy for _, proxy, original in self._proxies}
        for handler in stream_handlers():
            proxy = replaced.get(id(handler.stream))
            if proxy is not None:  # e.g. the CLI's, made before the display existed
                self._handlers.append((handler, handler.setStream(proxy)))

    def _restore_streams(self) -> None:
        proxies, self._proxies = self._proxies, []
        handlers, self._handlers = self._handlers, []
        for handler, original in handlers:
            if original is not None and isinstance(handler.stream, LiveTextStream):
                handler.setStream(original)
        for name, proxy, original in proxies:
            proxy.finish()
            if getattr(sys, name) is proxy:
                setattr(sys, name, original)

    def _live_loop(self, live: Any) -> None:
        while not self._stop.is_set():
            self._live_status = self._live_renderables()  # the record's lock, not the display's
            with display_lock(live):
                if self._stop.is_set():
                    return
                try:
                    live.refresh()
                except Exception:
                    self._fail("live refresh")
            self._stop.wait(1 / LIVE_REFRESH_PER_S)

    def _live_view(self) -> Any:
        """What the live region shows: the last status (built by :meth:`_live_loop`;
        nothing here may take the record's lock), then the command's open lines, last
        so that the cursor stands after a prompt, where typed input is echoed."""
        from rich.console import Group
        from rich.text import Text

        return Group(
            *self._live_status,
            # cropped to one row: the region's height must not depend on the text
            *(
                Text.from_ansi(line, no_wrap=True, overflow="crop")
                for line in list(self._open_lines.values())
            ),
        )

    def _live_renderables(self) -> list[Any]:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        try:
            doc, now_ns = self._snapshot()
            self._update_rates(doc, now_ns / 1e9)
            eta = self.eta(doc, now_ns)
            enabled = [s for s in doc["steps"] if s["status"] != "skipped"]
            done = sum(1 for s in enabled if s["status"] == "completed")
            running = [s for s in doc["steps"] if s["status"] == "running"]
            parts: list[Any] = []
            bars = Table.grid(padding=(0, 1))
            if running:
                step = running[-1]
                rate = self._rates.get(step["index"])
                line = running_line(doc, step["index"], eta, doc.get("elapsed_s") or 0.0, rate)
                # Text, not markup: names are data
                parts.append(Text(self._flag_stuck(line, doc, now_ns)))
                total = step["progress"]["total"]
                if total:
                    completed = min(step["progress"]["completed"], total)
                    bars.add_row("step", ProgressBar(total=total, completed=completed, width=40))
            overall = ProgressBar(total=max(len(enabled), 1), completed=done, width=40)
            bars.add_row(f"run {done}/{len(enabled)}", overall, eta.text())
            parts.append(bars)
            machine = self._resource_text()
            if machine:
                parts.append(Text(machine, style="dim"))
            return parts
        except Exception:
            self._fail("live view")
            return []

    def _resource_text(self) -> str:
        resources = self.resources
        if resources is None:
            return ""
        try:
            return resources()
        except Exception:
            self._fail("resources")
            return ""

    def _emit(self, line: str) -> None:
        if self.mode == "off":
            return
        line = self._label + line
        if self.mode == "log":
            progress_logger.info("%s", line)
            return
        live = self._live
        if live is not None:
            print_above(live, line, markup=False, highlight=False)
            return
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            self._fail("write")

    def _fail(self, what: str) -> None:
        if not self._failed:
            self._failed = True
            logger.warning(
                "otel-tracker progress output failed (%s); the run goes on", what, exc_info=True
            )


FIRST_LINE_S = 3.0  # off a terminal, a step's first in-step line comes this soon
OBSERVE_S = 1.0  # off a terminal, the step's count is read this often for its rate


def plain_delays(interval: float) -> Iterator[float]:
    """Seconds between a step's in-step lines off a terminal: 3, 6, 12, 24... up to
    ``interval`` and then every ``interval``: a 10 s step gets a line, a day-long one
    does not flood the log (a new step starts the series again)."""
    delay = min(FIRST_LINE_S, interval)
    while True:
        yield delay
        delay = min(interval, delay * 2)


def _step_source(step: dict[str, Any]) -> str:
    """Where a step's own expected duration came from (history, declared or none)."""
    source = step.get("expected_source")
    if step.get("expected_duration_s") is None or source is None:
        return "none"
    return "declared" if source == "author" else "history"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
