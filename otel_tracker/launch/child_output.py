"""A wrapped command's stdout and stderr: to the console, and to its log files.

On a terminal that shows the live progress display, the command's output must
scroll above the display the way ``print()`` does inside a tracked script, not
be written behind the display's back (which wipes it). Complete lines go above
the display (colours kept); the current unterminated line (a ``\\r`` progress bar,
a prompt) is shown at the bottom of the display until its line ends (see
:mod:`otel_tracker.record.live_output`). Everywhere else (a pipe, a file, no
live display) the bytes go through untouched. The log files get the same bytes,
line by line with secrets redacted (:class:`otel_tracker.redact.text.RedactedLines`).

Each pipe has a pump thread. Once the command has exited, :meth:`ChildOutput.drain`
returns as soon as everything the command wrote is copied: a process it left
behind that still holds the pipe (``sleep 20 &``) cannot hold the run's end.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import select
import struct
import sys
import termios
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from ..record.live_output import LiveLines, unproxied
from ..redact.text import RedactedLines

CHUNK = 65536


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...

    def finish(self) -> None:
        """The writer is gone (or has exited): end any unterminated line."""


class RawSink:
    """Bytes as they come, to a binary stream (a pipe, a file, a terminal without a
    live display); a closed stream or a full disk never stops the command's output."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        return None


class LogSink(RawSink):
    """A log file of the run, opened for appending; never follows a planted symlink."""

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        # the console gets the command's output as is; the file keeps no secrets
        log = os.fdopen(os.open(path, flags | os.O_CLOEXEC, 0o644), "ab")
        super().__init__(RedactedLines(log))  # type: ignore[arg-type]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()


class LiveSink:
    """Decoded text through the reporter's live display (see
    :mod:`otel_tracker.record.live_output`); ``fallback`` once it has stopped."""

    def __init__(self, reporter: Any, key: str, fallback: IO[bytes]) -> None:
        raw = RawSink(fallback)
        self._lines = LiveLines(
            reporter, key, lambda text: raw.write(text.encode("utf-8", "replace"))
        )
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, data: bytes) -> None:
        self._lines.feed(self._decoder.decode(data))

    def finish(self) -> None:
        self._lines.finish(self._decoder.decode(b"", final=True))


def console_stream(name: str) -> IO[str]:
    """``sys.stdout``/``sys.stderr`` as the process got it, not a live display's
    stand-in for it."""
    return unproxied(getattr(sys, name))  # type: ignore[no-any-return]


def console_sink(reporter: Any, name: str, explicit: IO[bytes] | None) -> Sink:
    """Where the command's ``name`` stream goes on our side: ``explicit`` as is; else
    our own stream, through the live display when that stream is its terminal."""
    if explicit is not None:
        return RawSink(explicit)
    stream = console_stream(name)
    binary = getattr(stream, "buffer", stream)
    if reporter is not None and reporter.live and _isatty(stream):
        return LiveSink(reporter, name, binary)
    return RawSink(binary)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Pump(threading.Thread):
    """Copies one pipe to its sinks until EOF; on ``exited`` it first copies what
    was in the pipe at that moment (all the command wrote) and says so."""

    def __init__(self, pipe: IO[bytes], sinks: list[Sink], wake: int, exited: threading.Event):
        super().__init__(name="otel-tracker-output", daemon=True)
        self._fd = pipe.fileno()
        self._pipe = pipe
        self._sinks = sinks
        self._wake = wake
        self._exited = exited
        self.drained = threading.Event()

    def run(self) -> None:
        poller = select.poll()  # not select(): no limit on the fd's number
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._fd in ready and not self._copy(CHUNK):
                    break  # EOF: every writer is gone
                if not self.drained.is_set() and self._exited.is_set():
                    self._copy_all(_available(self._fd))
                    self._finish()
                    self.drained.set()
                    poller.unregister(self._wake)  # what follows comes from leftovers
        except (OSError, ValueError):
            pass
        finally:
            self._finish()
            self.drained.set()
            for sink in self._sinks:
                close = getattr(sink, "close", None)  # a log file, or a filter in front of one
                if close is not None:
                    close()
            with contextlib.suppress(OSError):
                self._pipe.close()

    def _copy(self, limit: int) -> int:
        data = os.read(self._fd, limit)
        for sink in self._sinks:
            try:
                sink.write(data)
            except Exception:  # a sink's failure must never stop the pipe being read
                pass
        return len(data)

    def _copy_all(self, count: int) -> None:
        while count > 0:
            got = self._copy(min(count, CHUNK))
            if not got:
                return
            count -= got

    def _finish(self) -> None:
        for sink in self._sinks:
            with contextlib.suppress(Exception):
                sink.finish()


def _available(fd: int) -> int:
    """Bytes waiting in a pipe."""
    raw = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


class ChildOutput:
    """Pumps for a child's pipes: ``streams`` maps a pipe to its console sink and log."""

    def __init__(
        self,
        streams: list[tuple[IO[bytes], Sink, Path | None]],
        wrap_first: Callable[[list[Sink]], Sink] | None = None,
    ) -> None:
        """``wrap_first`` puts a sink in front of the first stream's (stdout's) sinks:
        the step protocol's filter (:mod:`otel_tracker.launch.step_control`)."""
        self._exited = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._pumps = []
        for number, (pipe, console, log_path) in enumerate(streams):
            sinks: list[Sink] = [console]
            if log_path is not None:
                with contextlib.suppress(OSError):
                    sinks.append(LogSink(log_path))
            if number == 0 and wrap_first is not None:
                sinks = [wrap_first(sinks)]
            self._pumps.append(_Pump(pipe, sinks, self._wake_read, self._exited))
        for pump in self._pumps:
            pump.start()

    def drain(self) -> None:
        """Call once the child has exited: returns when all it wrote has been copied."""
        self._exited.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        for pump in self._pumps:
            pump.drained.wait()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
