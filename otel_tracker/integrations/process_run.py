"""A run that lasts as long as the process, ended at exit with the truth it can know.

``otel-tracker run --auto`` tracks an unchanged program this way, and so does a
framework callback used in a script that never called ``track_run``. At
interpreter exit an uncaught exception fails it, ``sys.exit(code)`` is recorded
with its code, a signal cancels it (the run's own handlers), and ``os._exit`` or
SIGKILL leave it running for readers to call ``aborted``. Code that must record
something first (a tqdm step the program left open) registers with
:meth:`ProcessRun.before_end` and is told the program's error.
"""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class _ExitCode:
    """Remembers the code of ``sys.exit(code)``: at interpreter exit nothing else does."""

    def __init__(self) -> None:
        self.code: Any = None
        self.called = False
        self._exit = sys.exit

    def __call__(self, code: Any = None) -> None:
        self.called, self.code = True, code
        self._exit(code)


class ProcessRun:
    """``run`` (and its ``step``, if any) entered now and ended at interpreter exit."""

    def __init__(self, run: Any, step: Any | None) -> None:
        self.run, self.step = run, step
        self._before: list[Callable[[BaseException | None], None]] = []
        self._exit_code = _ExitCode()
        sys.exit = self._exit_code
        atexit.register(self._finish)

    def before_end(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(error)`` at exit, before the step and the run end."""
        self._before.append(callback)

    def error(self) -> BaseException | None:
        """What the program is exiting with: an uncaught exception, a failing
        ``sys.exit``, else ``None``."""
        error: BaseException | None = getattr(sys, "last_value", None)
        if not isinstance(error, BaseException):
            code = self._exit_code
            error = SystemExit(code.code) if code.called else None
        if isinstance(error, SystemExit) and error.code in (None, 0):
            error = None
        return error

    def _finish(self) -> None:
        error = self.error()
        for callback in self._before:
            try:
                callback(error)
            except Exception as exc:
                logger.warning("otel-tracker: %s failed at exit: %s", callback, exc)
        kind = type(error) if error is not None else None
        try:
            if self.step is not None:
                self.step.__exit__(kind, error, None)
        finally:
            self.run.__exit__(kind, error, None)


_current: ProcessRun | None = None


def start_process_run(
    name: str, *, step: str | None = None, **track_run_kwargs: Any
) -> ProcessRun | None:
    """Track this process as run ``name`` (with one step ``step`` lasting as long)
    until it exits; ``None``, with one warning, when that fails."""
    global _current
    from ..api import track_run

    try:
        run = track_run(name, steps=[step] if step else None, **track_run_kwargs)
        run.__enter__()
        handle = run.step(step) if step else None
        if handle is not None:
            handle.__enter__()
    except Exception as exc:
        logger.warning("otel-tracker could not track %s: %s", name, exc)
        return None
    _current = ProcessRun(run, handle)
    return _current


def current_process_run() -> ProcessRun | None:
    """The process run :func:`start_process_run` started, if any."""
    return _current
