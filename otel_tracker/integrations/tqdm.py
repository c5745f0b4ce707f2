"""tqdm bars as steps: the loops a script already shows become the run's steps.

:func:`capture` wraps ``tqdm.std.tqdm.__init__`` and ``close`` (every tqdm flavour,
``tqdm.auto``, ``tqdm.notebook``, ``trange``, ``tqdm.contrib``, subclasses it), never
``update`` or ``__iter__``: a captured bar costs nothing per iteration. Its step
*follows* the bar (:meth:`~otel_tracker.record.step.Step.follow`): the sampler,
the reporter and the manifest read ``bar.n`` and ``bar.total`` when they sample.

* An outermost bar (no captured bar open, and no step of the program's own
  running other than ``--auto``'s step for the whole program) becomes a step named
  by its ``desc``, else by the line that created it (``train.py:42``), with its
  total and unit.
* A bar opened inside a step that counts nothing yet (a step of the program's own
  with no total and nothing advanced) becomes that step's progress.
* Any other bar is a nested loop of the step (batches in an epoch): no step.
* A bar a framework integration creates itself (Lightning's, the Hugging Face
  Trainer's) is left to that integration, which reports more than the bar knows.
* A disabled bar (``disable=True``) counts nothing: its step has no progress.

A bar closed before its total (``break``, or an exception on its way out) stops
its step's clock at once, but the step ends only when the program shows which it
was: when the next outermost bar opens or a second passes (completed), or when
the program exits (failed, if it exits with an error).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

from .metrics import FRAMEWORK_STEPS
from .patching import ORIGINAL, is_patched

logger = logging.getLogger(__name__)

# A script that opens a bar per file would otherwise make thousands of steps.
MAX_BAR_STEPS = 500
# How long a bar closed early waits for the program to fail before it is "completed".
EARLY_CLOSE_GRACE_S = 1.0
_ATTR = "_otel_tracker_step"
_OWN_MODULES = ("tqdm", __name__)


class BarCapture:
    """Turns tqdm bars into steps of ``run`` (else of the run current at the time)."""

    def __init__(
        self,
        run: Any | None = None,
        *,
        program_step: Any | None = None,
        max_steps: int = MAX_BAR_STEPS,
        grace_s: float = EARLY_CLOSE_GRACE_S,
    ) -> None:
        self.run = run
        self.program_step = program_step
        self.max_steps = max_steps
        self.grace_s = grace_s
        # module prefixes whose bars a framework integration reports instead
        self.deferred_modules: set[str] = set()
        self._lock = threading.RLock()
        # id(bar) -> (a weak reference to it, its step), outermost bars only
        self._open: dict[int, tuple[Any, Any]] = {}
        self._pending: tuple[Any, threading.Timer] | None = None
        self._made = 0
        self._warned = False

    # -- what the patched tqdm calls ------------------------------------------------
    def opened(self, bar: Any, desc: Any = None) -> None:
        """``bar`` was made (``desc``: as given, for a disabled bar keeps none)."""
        run = self.run if self.run is not None else _current_run()
        if run is None or getattr(run, "ended", True) or run.run_id is None:
            return
        caller = _caller_frame()
        module = caller.f_globals.get("__name__", "") if caller is not None else ""
        if any(module == m or module.startswith(m + ".") for m in self.deferred_modules):
            return
        with self._lock:
            self._settle_finished()
            step = _current_step()
            if step is not None and step is not self.program_step:
                self._feed(step, bar)
                return
            if self._open:
                return  # a nested loop of the open bar's step
            self._settle(None)
            if self._made >= self.max_steps:
                self._warn_too_many()
                return
            self._made += 1
            self._start_step(run, bar, _bar_name(bar, desc, caller))

    def closed(self, bar: Any) -> None:
        found = bar.__dict__.pop(_ATTR, None)
        if found is None:
            return
        step = found[1]
        step.read_progress()  # the last count, while the bar is still there to read
        step.follow(None)
        with self._lock:
            if self._open.pop(id(bar), None) is None:
                return  # it fed a step of the program's own: that step goes on
            self._end_bar_step(bar, step)

    def _end_bar_step(self, bar: Any, step: Any) -> None:
        """A captured bar closed: end its step, or stop its clock if it closed early."""
        with self._lock:
            total, n = getattr(bar, "total", None), getattr(bar, "n", 0)
            if getattr(bar, "disable", False) or total is None or n >= total:
                step.__exit__(None, None, None)
                return
            # closed early: a `break`, or an exception leaving the loop; wait and see
            self._settle(None)
            step.stop_clock()
            timer = threading.Timer(self.grace_s, self._settle, args=(step,))
            timer.daemon = True
            self._pending = (step, timer)
            timer.start()

    def busy(self) -> bool:
        """Whether a step of this capture's bars is still open."""
        with self._lock:
            return bool(self._open) or self._pending is not None

    def finish(self, error: BaseException | None) -> None:
        """The program is exiting with ``error``: end what is still open with it."""
        with self._lock:
            self._settle(None, error)
            for bar_id, (_, step) in list(self._open.items()):
                self._open.pop(bar_id, None)
                kind = type(error) if error is not None else None
                step.__exit__(kind, error, None)

    # -- helpers ------------------------------------------------------------------------
    def _start_step(self, run: Any, bar: Any, name: str) -> None:
        disabled = bool(getattr(bar, "disable", False))
        total = getattr(bar, "total", None)
        unit = getattr(bar, "unit", None)
        step = run.step(
            name,
            total=_whole(total) if not disabled else None,
            unit=unit if unit and unit != "it" and not disabled else None,
        )
        step.__enter__()
        if not disabled:
            step.follow(_bar_progress(bar))
        bar.__dict__[_ATTR] = (self, step)
        self._open[id(bar)] = (weakref.ref(bar), step)

    def _feed(self, step: Any, bar: Any) -> None:
        """A bar inside a step of the program's own that counts nothing yet drives it."""
        if getattr(bar, "disable", False) or getattr(step, "_source", None) is not None:
            return
        if any(open_step is step for _, open_step in self._open.values()):
            return  # a loop nested in a captured bar's step, even a disabled one
        if id(step) in FRAMEWORK_STEPS:
            return  # a framework's stage: its integration counts its progress
        if step.total is not None or step.completed:
            return
        unit = getattr(bar, "unit", None)
        step.set_total(_whole(getattr(bar, "total", None)), unit if unit != "it" else None)
        step.follow(_bar_progress(bar))
        bar.__dict__[_ATTR] = (self, step)

    def _settle_finished(self) -> None:
        """End the steps of bars that were never closed but are done: garbage, or at
        their total (``pbar = tqdm(total=n)`` updated to the end and left open), so they
        do not make every later bar look nested."""
        for bar_id, (ref, step) in list(self._open.items()):
            bar = ref()
            total = getattr(bar, "total", None) if bar is not None else None
            if bar is None or (total is not None and getattr(bar, "n", 0) >= total):
                self._open.pop(bar_id, None)
                step.read_progress()
                step.follow(None)
                step.__exit__(None, None, None)

    def _settle(self, only: Any | None, error: BaseException | None = None) -> None:
        """End the step of the bar closed early (``only``: if it is still that one)."""
        with self._lock:
            pending = self._pending
            if pending is None or (only is not None and pending[0] is not only):
                return
            self._pending = None
            step, timer = pending
            timer.cancel()
            kind = type(error) if error is not None else None
            step.__exit__(kind, error, None)

    def _warn_too_many(self) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "otel-tracker: %d tqdm bars became steps; later bars are not captured",
                self.max_steps,
            )


def _bar_progress(bar: Any) -> Callable[[], tuple[float, float | None] | None]:
    ref = weakref.ref(bar)

    def progress() -> tuple[float, float | None] | None:
        found = ref()
        return None if found is None else (found.n, found.total)

    return progress


def _whole(total: Any) -> int | None:
    try:
        value = float(total)
    except (TypeError, ValueError):
        return None
    return int(value) if 0 <= value < float("inf") else None


def _bar_name(bar: Any, given: Any, caller: FrameType | None) -> str:
    desc = str(getattr(bar, "desc", "") or given or "").strip().rstrip(":").strip()
    if desc:
        return desc
    if caller is None:
        return "tqdm"
    return f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"


def _caller_frame() -> FrameType | None:
    """The first frame outside tqdm and this module: the code that made the bar."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not any(module == m or module.startswith(m + ".") for m in _OWN_MODULES):
            return frame
        frame = frame.f_back
    return None


def _current_run() -> Any | None:
    from ..api import current_run

    return current_run()


def _current_step() -> Any | None:
    from ..record import current

    return current.active("step")


# -- patching tqdm ------------------------------------------------------------------------
_capture: BarCapture | None = None


_UNSET: Any = object()


def capture(run: Any | None = _UNSET, *, program_step: Any | None = _UNSET) -> BarCapture:
    """Make tqdm bars steps of ``run`` (default: the run current when a bar opens),
    from now on and in any tqdm imported later. Calling it again changes only the
    settings it is given (so a script's own ``capture()`` under ``run --auto`` keeps
    ``--auto``'s); :func:`release` undoes it."""
    global _capture
    if _capture is None:
        _capture = BarCapture()
    if run is not _UNSET:
        _capture.run = run
    if program_step is not _UNSET:
        _capture.program_step = program_step
    from .hooks import when_imported

    when_imported("tqdm", _patch)
    return _capture


def release() -> None:
    """Stop capturing: bars made from now on are plain tqdm. Bars whose steps are
    open still end them when they close (tqdm stays wrapped until none is left)."""
    global _capture
    released, _capture = _capture, None
    module = sys.modules.get("tqdm.std")
    if module is not None and (released is None or not released.busy()):
        _unpatch(module)


def _patch(_: ModuleType) -> None:
    import tqdm.std

    cls = tqdm.std.tqdm
    if is_patched(cls.__init__):
        return
    original_init, original_close = cls.__init__, cls.close

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        found = _capture
        if found is not None:
            try:
                found.opened(self, kwargs.get("desc", args[1] if len(args) > 1 else None))
            except Exception as exc:  # telemetry never breaks the loop
                logger.debug("otel-tracker: tqdm bar not captured: %s", exc)

    def close(self: Any) -> None:
        made = self.__dict__.get(_ATTR)
        if made is not None:  # the capture that made its step ends it, even if released
            try:
                made[0].closed(self)
            except Exception as exc:
                logger.debug("otel-tracker: tqdm bar's step not ended: %s", exc)
        original_close(self)

    setattr(__init__, ORIGINAL, original_init)
    setattr(close, ORIGINAL, original_close)
    __init__.__doc__, close.__doc__ = original_init.__doc__, original_close.__doc__
    cls.__init__, cls.close = __init__, close  # type: ignore[method-assign]


def _unpatch(module: ModuleType) -> None:
    cls = module.tqdm
    for name in ("__init__", "close"):
        original = getattr(getattr(cls, name), ORIGINAL, None)
        if original is not None:
            setattr(cls, name, original)
