"""SignalChain: chained handlers shared by every open run, signals held while the
tracker's own bookkeeping runs on the main thread, and handlers that never reach a
forked child."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_tracker.record.signals import SignalChain

SIG = signal.SIGUSR1


@pytest.fixture
def calls() -> Iterator[list[Any]]:
    """What ran, in order: the chain's callbacks and the handler it chains to."""
    seen: list[Any] = []
    previous = signal.signal(SIG, lambda signum, frame: seen.append("previous"))
    try:
        yield seen
    finally:
        signal.signal(SIG, previous)


def recorder(calls: list[Any], tag: str = "callback") -> Callable[[int, bool], None]:
    def callback(signum: int, fatal: bool) -> None:
        calls.append((tag, fatal))

    return callback


def _raise_signal(sig: int = SIG) -> None:
    os.kill(os.getpid(), sig)
    for _ in range(1000):  # the handler runs at the next bytecode boundary
        pass


def test_a_signal_is_handled_at_once_outside_a_deferring_section(calls: list[Any]) -> None:
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    try:
        _raise_signal()
        assert calls == [("callback", False), "previous"]
    finally:
        chain.unregister(callback)
    assert signal.getsignal(SIG) is not chain._handle


def test_every_registered_run_hears_a_signal_newest_first(calls: list[Any]) -> None:
    # nested runs, and runs on worker threads, all register with the one chain
    chain = SignalChain((SIG,))
    outer, inner = recorder(calls, "outer"), recorder(calls, "inner")
    assert chain.register(outer)
    registered: list[bool] = []
    worker = threading.Thread(target=lambda: registered.append(chain.register(inner)))
    worker.start()
    worker.join()
    try:
        assert registered == [True]  # installed by the main thread's run
        _raise_signal()
        assert calls == [("inner", False), ("outer", False), "previous"]
        chain.unregister(inner)
        assert chain.installed  # the outer run still needs the handlers
    finally:
        chain.unregister(outer)
    assert not chain.installed and signal.getsignal(SIG) is not chain._handle


def test_a_signal_inside_nested_sections_waits_for_the_outermost_end(calls: list[Any]) -> None:
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    try:
        with chain.deferring:
            with chain.deferring:
                _raise_signal()
                assert calls == []
            assert calls == []
        assert calls == [("callback", False), "previous"]
    finally:
        chain.unregister(callback)


def test_a_held_signal_goes_to_the_handler_in_place_when_it_arrived(calls: list[Any]) -> None:
    # the last run unregisters while a signal it held is still pending
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    with chain.deferring:
        _raise_signal()
        chain.unregister(callback)
    assert calls == ["previous"]


def test_an_exception_from_the_chained_handler_leaves_the_section(calls: list[Any]) -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(SIG, interrupt)
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    try:
        with pytest.raises(KeyboardInterrupt), chain.deferring:
            _raise_signal()
            calls.append("section done")
        assert calls == ["section done", ("callback", False)]
        with chain.deferring:  # balanced again: nothing is held any more
            pass
        assert chain._depth == 0 and chain._held == []
    finally:
        chain.unregister(callback)


def test_sections_on_other_threads_hold_nothing(calls: list[Any]) -> None:
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with chain.deferring:
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert entered.wait(5)
        _raise_signal()  # handled on the main thread, which is in no section
        assert calls == [("callback", False), "previous"]
    finally:
        release.set()
        thread.join()
        chain.unregister(callback)


def _in_child(check: Callable[[], bool]) -> int:
    """Fork; the child's exit code says whether ``check()`` held there."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            os._exit(0 if check() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_gets_the_handlers_from_before_the_tracker(calls: list[Any]) -> None:
    # forked inside a section (as from a worker thread while the main thread is in
    # one): the child must neither hold signals for it nor run the runs' callbacks
    chain = SignalChain((SIG,))
    callback = recorder(calls)
    assert chain.register(callback)
    try:

        def check() -> bool:
            _raise_signal()
            return calls == ["previous"] and not chain.installed

        with chain.deferring:
            assert _in_child(check) == 0
        assert calls == []  # nothing reached the parent
    finally:
        chain.unregister(callback)


def test_a_forked_child_keeps_the_default_action_of_a_fatal_signal() -> None:
    # a pool worker whose SIGTERM lands just before it blocks in a semaphore must
    # die of it; a Python handler would only set a flag the worker never reads
    sig = signal.SIGUSR2
    assert signal.getsignal(sig) is signal.SIG_DFL
    chain = SignalChain((sig,))
    callback = recorder([])
    assert chain.register(callback)
    try:
        assert signal.getsignal(sig) == chain._handle
        assert _in_child(lambda: signal.getsignal(sig) is signal.SIG_DFL) == 0

        pid = os.fork()
        if pid == 0:  # pragma: no cover
            lock = threading.Lock()
            lock.acquire()
            lock.acquire(timeout=60)
            os._exit(0)
        os.kill(pid, sig)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig
    finally:
        chain.unregister(callback)
    assert signal.getsignal(sig) is signal.SIG_DFL
