"""A real pseudo-terminal for the tests: a command runs as the session leader of a
new pty (its controlling terminal, as in a terminal emulator), and everything it
writes is fed into a VT100 emulator (pyte), so a test asserts what the SCREEN shows,
not which bytes were written."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import pyte

# each child gets a generous screen: nothing a test looks for scrolls off it
ROWS, COLUMNS = 60, 160


class Terminal:
    """``argv`` running on a pty of ``rows`` x ``columns``, read into a pyte screen;
    use it as a context manager (the command is killed if it outlives the test)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str | None = None,
        rows: int = ROWS,
        columns: int = COLUMNS,
    ) -> None:
        self.screen = pyte.Screen(columns, rows)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._eof = False
        pid, fd = pty.fork()
        if pid == 0:  # the child: a session leader whose controlling terminal is the pty
            try:
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], list(argv), dict(env))
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.returncode: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: every process holding the pty's other end is gone
                data = b""
            with self._changed:
                if not data:
                    self._eof = True
                    self._changed.notify_all()
                    return
                self.raw.extend(data)
                self._stream.feed(data)
                self._changed.notify_all()

    def lines(self) -> list[str]:
        """The screen's rows, right-stripped, without the empty rows at the bottom."""
        with self._lock:
            rows = [row.rstrip() for row in self.screen.display]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_screen(self, check: Callable[[list[str]], bool], timeout: float = 30.0) -> list[str]:
        """Wait until ``check(lines)`` holds for the screen; fail with the screen shown."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                rows = [row.rstrip() for row in self.screen.display]
                if check(rows):
                    return rows
                left = deadline - time.monotonic()
                if left <= 0 or (self._eof and not check(rows)):
                    if self._eof:
                        raise AssertionError("the terminal closed; screen:\n" + "\n".join(rows))
                    raise AssertionError(f"screen after {timeout}s:\n" + "\n".join(rows))
                self._changed.wait(min(left, 0.5))

    def write(self, data: bytes) -> None:
        """Type ``data`` on the terminal (``b"\\x03"`` is Ctrl-C under the default termios)."""
        os.write(self.fd, data)

    def foreground_group(self) -> int:
        """The terminal's foreground process group (the one Ctrl-C reaches)."""
        return os.tcgetpgrp(self.fd)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the command to exit and for its output to drain; its exit status."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s; screen:\n{self.text()}")
            time.sleep(0.02)
        self._reader.join(timeout=max(1.0, deadline - time.monotonic()))
        return self.returncode

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the command if it still runs, and close the terminal."""
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.wait(timeout=10)
            except AssertionError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass
