"""The ``otel-tracker`` command line: a thin layer over the library.

:func:`build_parser` only assembles the command groups: each group's module (demo, read,
compare, write, live, baseline, perf_test) adds its commands, parser next to handler, from the
shared option bundles of :mod:`.options`.

Read-only commands must start fast, so nothing here imports the OpenTelemetry
SDK at module level; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import OtelTrackerError
from . import (
    baseline,
    compact,
    compare,
    demo,
    gather,
    live,
    perf_test,
    prune,
    read,
    step,
    tensorboard,
    ui,
    write,
)
from .options import add_global_options

# the order of ``otel-tracker --help``; each module adds its commands, parsers beside handlers
COMMAND_GROUPS = (
    demo,
    read,
    compare,
    write,
    step,
    live,
    ui,
    tensorboard,
    baseline,
    perf_test,
    prune,
    compact,
    gather,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="otel-tracker",
        description="Track ML and data pipeline runs with OpenTelemetry.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  otel-tracker demo\n",
    )
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


class CliLogFormatter(logging.Formatter):
    """``otel-tracker: warning: <message>``: one line, our prefix once (the library's
    messages start with it, for programs that show them bare), and a traceback only
    with ``-v``."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        message = record.message = record.getMessage()
        for prefix in ("otel-tracker: ", "otel-tracker "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
                break
        line = f"otel-tracker: {record.levelname.lower()}: {message}"
        if self.verbose and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-tracker`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    root_logger = logging.getLogger()
    if not root_logger.handlers:  # as basicConfig: a program that set up logging keeps it
        handler = logging.StreamHandler()
        handler.setFormatter(CliLogFormatter(verbose=args.verbose))
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OtelTrackerError as exc:
        from ..printable import printable

        # messages quote file contents and arguments: one line, nothing a terminal obeys
        print(f"otel-tracker: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as cat and grep do; point
        # stdout at /dev/null so that the interpreter's final flush does not fail too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE
