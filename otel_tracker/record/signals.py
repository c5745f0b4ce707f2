"""Chained SIGTERM/SIGINT/SIGHUP handling for every open run of the process.

One :class:`SignalChain` per process (:func:`process_signals`) holds the open runs'
callbacks. Its handlers are installed from the main thread while a run is open,
only over a handler that would otherwise end or interrupt the process; an ignored
signal stays ignored. A signal calls every open run's callback (nested runs and
runs on worker threads included, newest first), then the handler that was there
before (or, for the default action, the signal is re-raised with it), so exit
codes and the application's own handlers keep working.

Python runs a handler on the main thread between two bytecodes, so it could
interrupt the tracker's own bookkeeping half done (a step registered but its span
not yet started, a lock held that the final manifest write needs). Code that
changes a run's state therefore runs inside :attr:`SignalChain.deferring`: a
signal arriving there is handled the moment that code is done.

Three things keep a handler of ours from changing how a signal ends a process:

* A forked child gets back the dispositions that were there before ours
  (``os.register_at_fork``): a pool worker keeps SIGTERM's default action, so a
  ``Pool.terminate()`` that lands just before the worker blocks in a semaphore
  still kills it (a Python handler would only set a flag there, forever).
* A fatal signal whose handler has not run within :data:`STUCK_HANDLER_GRACE_S`
  (the main thread is inside one long C call: a BLAS kernel, a C++ training
  loop) is handled by a watchdog thread woken through ``signal.set_wakeup_fd``:
  it ends the open runs and lets the default action end the process.
* Once a fatal signal is being handled, later signals change nothing: the
  process dies by the one its record names.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SIGNALS = tuple(
    sig for sig in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if sig
)
# How long a fatal signal may wait for its Python handler before the watchdog
# handles it. Bookkeeping holds signals for at most about a second (signals are
# deferred during a step's end sample, which waits 1 s at most for the helper).
STUCK_HANDLER_GRACE_S = 2.0
# How long the watchdog lets the runs' ends take before the process dies anyway.
WATCHDOG_FINISH_S = 5.0

# (signum, fatal): fatal means the process is about to die by the default action.
SignalCallback = Callable[[int, bool], None]

# What a run uses for ``deferring`` when no handlers are installed.
NO_DEFERRAL: AbstractContextManager[None] = nullcontext()


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


class SignalChain:
    """Handlers for ``signals``, shared by the callbacks registered with it."""

    def __init__(self, signals: tuple[int, ...] = DEFAULT_SIGNALS) -> None:
        self._signals = signals
        self._callbacks: list[SignalCallback] = []
        self._lock = threading.Lock()  # registrations come from any thread
        self._previous: dict[int, Any] = {}
        self._main = threading.main_thread().ident
        self._pid = os.getpid()
        self._depth = 0  # how deep the main thread is in deferring sections
        self._held: list[tuple[int, FrameType | None, Any]] = []
        self._dying: int | None = None  # the fatal signal being handled
        self._watchdog: _Watchdog | None = None
        self.deferring = _Deferring(self)
        _forget_in_forked_children(self)

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def register(self, callback: SignalCallback) -> bool:
        """Call ``callback`` on a signal while it is registered; ``True`` when this
        process has handlers installed (only the main thread can install them)."""
        with self._lock:
            self._callbacks.append(callback)
        if not self._previous:
            self._install()
        return bool(self._previous)

    def unregister(self, callback: SignalCallback) -> None:
        """Forget ``callback``; the last one out restores the previous handlers."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
            last = not self._callbacks
        if last:
            self._uninstall()

    # -- installation (main thread only) ---------------------------------------------
    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._pid = os.getpid()
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
        if any(p is signal.SIG_DFL for p in self._previous.values()):
            self._watchdog = _Watchdog.start(self)

    def _uninstall(self) -> None:
        """Restore each previous handler where ours is still the installed one."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._restore_previous()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()

    def _restore_previous(self) -> None:
        for sig, previous in list(self._previous.items()):
            try:
                if signal.getsignal(sig) == self._handle:
                    signal.signal(sig, previous)
            except (OSError, ValueError, RuntimeError):
                pass
        self._previous.clear()

    # -- delivery -----------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # the previous handler as of now: the runs may uninstall ours before it is done
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
        if self._dying is not None:
            return  # the process dies by the first fatal signal, as its record says
        fatal = previous is signal.SIG_DFL
        if fatal:
            self._dying = signum
        if self._watchdog is not None:
            self._watchdog.handled(signum)
        self._notify(signum, fatal)
        if fatal:
            self._die(signum)
        elif callable(previous):
            previous(signum, frame)

    def _notify(self, signum: int, fatal: bool) -> None:
        for callback in reversed(list(self._callbacks)):  # the newest (innermost) run first
            try:
                callback(signum, fatal)
            except Exception:
                logger.warning("otel-tracker signal callback failed", exc_info=True)

    def _die(self, signum: int) -> None:
        """End the process by ``signum``'s default action (main thread)."""
        for sig in self._previous:
            if sig != signum:
                # a second signal now must not end the process with another status
                try:
                    signal.signal(sig, signal.SIG_IGN)
                except (OSError, ValueError):
                    pass
        self._uninstall()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # only if the default action did not end us

    def _die_from_watchdog(self, signum: int) -> None:
        """The main thread is stuck in C code: end the runs here, then the process."""
        with self._lock:
            if self._dying is not None:
                return
            self._dying = signum
        logger.warning(
            "otel-tracker: %s was not handled within %.0fs (the main thread is busy in "
            "native code); ending the run from a watchdog thread",
            signal_name(signum),
            STUCK_HANDLER_GRACE_S,
        )
        finisher = threading.Thread(
            target=self._notify, args=(signum, True), name="otel-tracker-signal-end", daemon=True
        )
        finisher.start()
        finisher.join(WATCHDOG_FINISH_S)
        _default_action_from_any_thread(signum)

    def _forget(self) -> None:
        """In a forked child: the dispositions from before us, nothing registered."""
        self._callbacks.clear()
        self._depth = 0
        self._held.clear()
        self._dying = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.forget_in_child()
        self._restore_previous()
        self._pid = os.getpid()


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


class _Watchdog:
    """Wakes on the bytes CPython writes to the wakeup fd for each signal, and
    handles a fatal one whose Python handler did not run in time."""

    def __init__(self, chain: SignalChain, read_fd: int, write_fd: int) -> None:
        self._chain = chain
        self._read_fd, self._write_fd = read_fd, write_fd
        self._cond = threading.Condition()
        self._arrived: dict[int, int] = {}
        self._handled: dict[int, int] = {}
        self._thread = threading.Thread(target=self._loop, name="otel-tracker-signals", daemon=True)

    @classmethod
    def start(cls, chain: SignalChain) -> _Watchdog | None:
        """Set up, unless the application already uses the wakeup fd (asyncio does)."""
        try:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            os.set_blocking(read_fd, True)
        except (AttributeError, OSError):
            return None
        try:
            old = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            old = None
        if old != -1:
            if old is not None:
                signal.set_wakeup_fd(old)  # someone else's: leave it, go without
            os.close(read_fd)
            os.close(write_fd)
            return None
        watchdog = cls(chain, read_fd, write_fd)
        watchdog._thread.start()
        return watchdog

    def handled(self, signum: int) -> None:
        with self._cond:
            self._handled[signum] = self._handled.get(signum, 0) + 1
            self._cond.notify_all()

    def stop(self) -> None:
        try:
            old = signal.set_wakeup_fd(-1)
            if old not in (self._write_fd, -1):
                signal.set_wakeup_fd(old)  # the application's since: it keeps it
        except (ValueError, OSError):
            pass
        try:
            os.write(self._write_fd, b"\0")  # wakes the thread, which closes both ends
        except OSError:
            pass

    def forget_in_child(self) -> None:
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            pass
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def _loop(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self._read_fd, 64)
                except InterruptedError:
                    continue
                if not data or 0 in data:
                    return
                for signum in data:
                    self._check(signum)
        except Exception:
            logger.debug("otel-tracker signal watchdog stopped", exc_info=True)
        finally:
            for fd in (self._read_fd, self._write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _check(self, signum: int) -> None:
        if self._chain._previous.get(signum) is not signal.SIG_DFL:
            return  # not fatal: the application's handler decides, in its own time
        with self._cond:
            self._arrived[signum] = self._arrived.get(signum, 0) + 1
            on_time = self._cond.wait_for(
                lambda: (
                    self._handled.get(signum, 0) >= self._arrived[signum]
                    or self._chain._dying is not None
                ),
                STUCK_HANDLER_GRACE_S,
            )
        if not on_time:
            self._chain._die_from_watchdog(signum)


def _default_action_from_any_thread(signum: int) -> None:
    """``signal.signal`` works on the main thread only; libc's works on any."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(signum, 0)  # SIG_DFL
        os.kill(os.getpid(), signum)
    except Exception:
        pass
    os._exit(128 + signum)


_chains: list[weakref.ref[SignalChain]] = []
_fork_hook_registered = False
_PROCESS: SignalChain | None = None
_mask_before_fork = threading.local()


def _forget_in_forked_children(chain: SignalChain) -> None:
    global _fork_hook_registered
    _chains[:] = [ref for ref in _chains if ref() is not None]
    _chains.append(weakref.ref(chain))
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_block_before_fork,
            after_in_parent=_unblock_after_fork,
            after_in_child=_after_fork_in_child,
        )
        _fork_hook_registered = True


def _installed_signals() -> set[int]:
    return {sig for ref in _chains if (chain := ref()) is not None for sig in chain._previous}


def _block_before_fork() -> None:
    """A signal that reached a child between ``fork()`` and its reset would find our
    handler (and the parent's wakeup fd) there: hold it until the reset is done."""
    signals = _installed_signals()
    _mask_before_fork.old = signal.pthread_sigmask(signal.SIG_BLOCK, signals) if signals else None


def _unblock_after_fork() -> None:
    old = getattr(_mask_before_fork, "old", None)
    _mask_before_fork.old = None
    if old is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _after_fork_in_child() -> None:
    for ref in reversed(_chains):  # the newest handlers sit over the older ones
        chain = ref()
        if chain is not None:
            try:
                chain._forget()
            except Exception:
                pass
    _unblock_after_fork()  # what arrived meanwhile now meets the restored dispositions


def process_signals() -> SignalChain:
    """The process's chain for SIGTERM, SIGINT and SIGHUP, shared by all its runs."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = SignalChain()
    return _PROCESS
