"""SignalChain: chained handlers, and signals held while the tracker's own
bookkeeping runs on the main thread."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from otel_tracker.signals import SignalChain

SIG = signal.SIGUSR1


@pytest.fixture
def calls() -> Iterator[list[Any]]:
    """What ran, in order: the chain's callback and the handler it chains to."""
    seen: list[Any] = []
    previous = signal.signal(SIG, lambda signum, frame: seen.append("previous"))
    try:
        yield seen
    finally:
        signal.signal(SIG, previous)


def _raise_signal() -> None:
    os.kill(os.getpid(), SIG)
    for _ in range(1000):  # the handler runs at the next bytecode boundary
        pass


def test_a_signal_is_handled_at_once_outside_a_deferring_section(calls: list[Any]) -> None:
    chain = SignalChain(lambda signum, fatal: calls.append(("callback", fatal)), (SIG,))
    assert chain.install()
    try:
        _raise_signal()
        assert calls == [("callback", False), "previous"]
    finally:
        chain.uninstall()
    assert signal.getsignal(SIG) is not chain._handle


def test_a_signal_inside_nested_sections_waits_for_the_outermost_end(calls: list[Any]) -> None:
    chain = SignalChain(lambda signum, fatal: calls.append(("callback", fatal)), (SIG,))
    assert chain.install()
    try:
        with chain.deferring:
            with chain.deferring:
                _raise_signal()
                assert calls == []
            assert calls == []
        assert calls == [("callback", False), "previous"]
    finally:
        chain.uninstall()


def test_a_held_signal_goes_to_the_handler_in_place_when_it_arrived(calls: list[Any]) -> None:
    # the run uninstalls its handlers while it ends, inside a section
    chain = SignalChain(lambda signum, fatal: calls.append(("callback", fatal)), (SIG,))
    assert chain.install()
    with chain.deferring:
        _raise_signal()
        chain.uninstall()
    assert calls == [("callback", False), "previous"]


def test_an_exception_from_the_chained_handler_leaves_the_section(calls: list[Any]) -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(SIG, interrupt)
    chain = SignalChain(lambda signum, fatal: calls.append("callback"), (SIG,))
    assert chain.install()
    try:
        with pytest.raises(KeyboardInterrupt), chain.deferring:
            _raise_signal()
            calls.append("section done")
        assert calls == ["section done", "callback"]
        with chain.deferring:  # balanced again: nothing is held any more
            pass
        assert chain._depth == 0 and chain._held == []
    finally:
        chain.uninstall()


def test_sections_on_other_threads_hold_nothing(calls: list[Any]) -> None:
    chain = SignalChain(lambda signum, fatal: calls.append("callback"), (SIG,))
    assert chain.install()
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
        assert calls == ["callback", "previous"]
    finally:
        release.set()
        thread.join()
        chain.uninstall()


def test_a_child_forked_inside_a_section_handles_signals_at_once(calls: list[Any]) -> None:
    # as when a worker thread forks while the main thread is in a section: the
    # child never leaves that section, so it must not hold signals for it
    chain = SignalChain(lambda signum, fatal: calls.append("callback"), (SIG,))
    assert chain.install()
    try:
        with chain.deferring:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit code
                _raise_signal()
                os._exit(0 if calls == ["callback", "previous"] else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert calls == []  # nothing reached the parent
    finally:
        chain.uninstall()
