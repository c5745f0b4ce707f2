"""Text that must appear above the live progress display, not behind its back.

Whatever writes to the terminal while the live region is drawn (a tracked script's
``print()`` and log lines, a wrapped command's output) goes through here: complete
lines are printed above the region, under the display's lock (one print redraws
the region from its last height: two at once would glue text onto it), verbatim,
with their colours and without other escape sequences; the current unterminated
line (a ``\\r`` progress bar such as tqdm's, a prompt) is shown at the bottom of the
region until it ends. :class:`LiveTextStream` stands in for ``sys.stdout`` /
``sys.stderr`` while the display runs.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable
from typing import IO, Any

MAX_OPEN_LINE = 16384  # an unterminated "line" longer than this is printed as a line

# escape sequences other than colours (SGR, "ESC [ ... m"): cursor moves, erasures,
# titles (OSC) would move the text under the live region's feet
NOT_COLOUR = re.compile(
    r"\x1b\[[0-?]*[ -/]*(?:[@-ln-~]|(?![ -~]))"  # CSI but SGR, or left unfinished
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: a window title, a hyperlink
    r"|\x1b(?![\[\]])[ -~]?"  # two-character escapes (save cursor...), a lone ESC
)


def visible(line: str) -> str:
    """What a terminal leaves of a line: the text after its last carriage return
    (a trailing one may be half of ``\\r\\n``)."""
    line = line.rstrip("\r")
    cut = line.rfind("\r")
    return line[cut + 1 :] if cut >= 0 else line


def colours_only(text: str) -> str:
    """``text`` as it may go above the live region: colours kept (and ended), other
    escape sequences dropped."""
    text = NOT_COLOUR.sub("", text)
    if "\x1b" in text:
        text += "\x1b[0m"  # a colour left on must not bleed into the live region
    return text


class Verbatim:
    """Lines written as they are (rich renders it without measuring or wrapping:
    parsing output into rich ``Text`` costs about 30 µs a line)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        yield Segment(self.text)
        yield Segment.line()


class LiveLines:
    """One stream's text, fed in pieces: complete lines to ``reporter.print_output``,
    the open line to ``reporter.set_open_line(key, ...)``; ``fallback(text)`` writes
    lines itself once the display has stopped."""

    def __init__(self, reporter: Any, key: str, fallback: Callable[[str], None]) -> None:
        self._reporter = reporter
        self._key = key
        self._fallback = fallback
        self._open = ""
        self._lock = threading.Lock()  # a stream may be written from several threads

    def feed(self, text: str) -> None:
        with self._lock:
            lines = (self._open + text).split("\n")
            tail = lines.pop()
            # keep only what the terminal would still show: a progress bar redrawn with
            # "\r" a million times is one short line, not a growing buffer
            cut = tail.rfind("\r", 0, len(tail) - 1)
            self._open = tail[cut + 1 :] if cut >= 0 else tail
            if len(self._open) > MAX_OPEN_LINE:
                lines.append(self._open)
                self._open = ""
            # the open line first: the print redraws the live region, which must not
            # show a line that the print itself puts above it
            self._reporter.set_open_line(self._key, visible(self._open) or None)
            if lines:
                self._print("\n".join(visible(line) for line in lines))

    def finish(self, rest: str = "") -> None:
        """The writer is gone: its unterminated line becomes a line of its own."""
        with self._lock:
            text, self._open = visible(self._open + rest), ""
            self._reporter.set_open_line(self._key, None)
            if text:
                self._print(text)

    def _print(self, text: str) -> None:
        if not self._reporter.print_output(text):
            self._fallback(text + "\n")


class LiveTextStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` while the live display runs (see the module).

    Anything else (``fileno``, ``isatty``, ``encoding``, ``buffer``) is the replaced
    stream's: bytes written to ``buffer`` bypass the display, as before.
    """

    def __init__(self, reporter: Any, key: str, original: IO[str]) -> None:
        self.proxied_file = original
        self._lines = LiveLines(reporter, key, self._write_original)

    def _write_original(self, text: str) -> None:
        try:
            self.proxied_file.write(text)
            self.proxied_file.flush()
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._lines.feed(text)
        return len(text)

    def flush(self) -> None:
        return None  # an open line stays open (and visible) until it ends

    def finish(self) -> None:
        self._lines.finish()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.proxied_file, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.proxied_file, "errors", None)

    def isatty(self) -> bool:
        return self.proxied_file.isatty()

    def fileno(self) -> int:
        return self.proxied_file.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proxied_file, name)


def print_above(live: Any, *objects: Any, **options: Any) -> None:
    """Print above ``live``'s region under its lock: a print positions the cursor from
    the region's last height, so prints from two threads (or a print and a refresh)
    at once would glue text onto the region."""
    with display_lock(live):
        live.console.print(*objects, **options)


_PRINT_LOCK = threading.RLock()


def display_lock(live: Any) -> Any:
    """The live display's own lock (its refresh holds it), else one of ours."""
    return getattr(live, "_lock", _PRINT_LOCK)


def stream_handlers() -> list[logging.StreamHandler]:
    """Every logging handler that writes to a stream (not a file)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


def unproxied(stream: Any) -> Any:
    """The stream a live display's proxy (ours or rich's) stands in for."""
    for attribute in ("proxied_file", "rich_proxied_file"):
        original = getattr(stream, attribute, None)
        if original is not None:
            return original
    return stream
