"""Pipe I/O with timeouts for the sampling helper's requests and replies."""

from __future__ import annotations

import os
import select
import time


def write_all(fd: int, data: bytes, timeout: float) -> None:
    """Write all of ``data`` to the non-blocking ``fd`` (one system call unless the
    pipe is full); ``TimeoutError`` if the reader takes none of it for ``timeout``."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            if not select.select([], [fd], [], timeout)[1]:
                raise TimeoutError(f"the helper took no request for {timeout:g}s") from None


class LineReader:
    """Lines from a pipe with a timeout (a buffered reader would hide data from select)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def readline(self, timeout: float | None) -> bytes | None:
        """The next line; ``b""`` at end of file, ``None`` when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def read(self, size: int, timeout: float) -> bytes | None:
        """Exactly ``size`` bytes; ``None`` at end of file or when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while len(self._buffer) < size:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.fd, max(65536, size - len(self._buffer))) if ready else b""
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data
