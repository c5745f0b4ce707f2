"""Chained SIGTERM/SIGINT/SIGHUP handling: finalize the record, then defer.

Handlers are installed only from the main thread and only over a handler that
would otherwise end or interrupt the process; an ignored signal stays ignored.
After our callback the previous handler runs (or, for the default action, the
signal is re-raised with it), so exit codes and the application's own handlers
keep working.

Python runs a handler on the main thread between any two bytecodes, so it could
interrupt the tracker's own bookkeeping half done (a step registered but its span
not yet started, a lock held that the final manifest write needs). Code that
changes the run's state therefore runs inside :attr:`SignalChain.deferring`: a
signal arriving there is handled the moment that code is done (microseconds to
milliseconds later), never in the middle of it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SIGNALS = tuple(
    sig for sig in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if sig
)

# (signum, fatal): fatal means the process is about to die by the default action.
SignalCallback = Callable[[int, bool], None]

# What a run uses for ``deferring`` when it installed no handlers.
NO_DEFERRAL: AbstractContextManager[None] = nullcontext()


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


class SignalChain:
    """Installs chained handlers for the run's lifetime."""

    def __init__(
        self, callback: SignalCallback, signals: tuple[int, ...] = DEFAULT_SIGNALS
    ) -> None:
        self._callback = callback
        self._signals = signals
        self._previous: dict[int, Any] = {}
        self._main = threading.main_thread().ident
        self._pid = os.getpid()
        self._depth = 0  # how deep the main thread is in deferring sections
        self._held: list[tuple[int, FrameType | None, Any]] = []
        self.deferring = _Deferring(self)

    def install(self) -> bool:
        """Install; ``False`` (and nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in self._signals:
            try:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN or previous is None:
                    continue  # None: set from C; we cannot chain to it safely
                signal.signal(sig, self._handle)
            except (OSError, ValueError, RuntimeError) as exc:
                logger.debug("cannot install handler for %s: %s", signal_name(sig), exc)
                continue
            self._previous[sig] = previous
        return bool(self._previous)

    def uninstall(self) -> None:
        """Restore each previous handler where ours is still the installed one."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in list(self._previous.items()):
            try:
                if signal.getsignal(sig) == self._handle:
                    signal.signal(sig, previous)
            except (OSError, ValueError, RuntimeError):
                pass
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # the previous handler as of now: the run may uninstall ours before it is done
        previous = self._previous.get(signum, signal.SIG_DFL)
        # a child forked from another thread inherits the depth of a section it never runs
        if self._depth and os.getpid() == self._pid:
            self._held.append((signum, frame, previous))
            return
        self._dispatch(signum, frame, previous)

    def _release(self) -> None:
        while self._held and not self._depth:
            self._dispatch(*self._held.pop(0))

    def _dispatch(self, signum: int, frame: FrameType | None, previous: Any) -> None:
        fatal = previous is signal.SIG_DFL
        try:
            self._callback(signum, fatal)
        except Exception:
            logger.warning("otel-tracker signal callback failed", exc_info=True)
        if fatal:
            self.uninstall()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            os._exit(128 + signum)  # only if the default action did not end us
        elif callable(previous):
            previous(signum, frame)


class _Deferring:
    """Re-entrant context manager: signals that arrive inside wait for its end.

    Only the main thread counts (handlers run there); other threads' sections
    need no deferral, as a handler waits on their locks like any other thread.
    """

    __slots__ = ("_chain",)

    def __init__(self, chain: SignalChain) -> None:
        self._chain = chain

    def __enter__(self) -> None:
        chain = self._chain
        if threading.get_ident() == chain._main:
            chain._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        chain = self._chain
        if threading.get_ident() == chain._main:
            chain._depth -= 1
            if not chain._depth and chain._held:
                chain._release()
