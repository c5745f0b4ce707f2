"""Steps and progress from a wrapped command in any language.

A command under ``otel-tracker run`` or ``pipeline run`` reports steps in two ways:

* ``otel-tracker step start NAME [--total N] [--unit U]``, ``step advance [N]`` and
  ``step end [--failed] [--message TEXT]``, from a shell script or any program that
  can run a command. Each sends one datagram to the wrapper's control socket, whose
  path the wrapper puts in ``OTEL_TRACKER_CONTROL``.
* With ``--progress-protocol``, lines of its stdout such as
  ``::otel-tracker:: step start "Load data" --total 3``, for a binary that cannot run
  a command. The wrapper parses them and keeps them out of the console and the log.

Either way the wrapper records the steps as a part joined to the run, nested under
the command's step, the way a joined Python child's steps are (see
:mod:`otel_tracker.contract.parts`): the wrapper is the part's one writer. Steps
are sequential: ``start`` ends the step before it (completed), and when the
command exits, a step still running ends completed, or failed if the command failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from ..contract.paths import RUN_DIR_ENV
from ..errors import OtelTrackerError

logger = logging.getLogger(__name__)

CONTROL_ENV = "OTEL_TRACKER_CONTROL"
PROTOCOL_MARK = b"::otel-tracker::"
MAX_MESSAGE = 64 * 1024
MAX_PENDING_LINE = 64 * 1024  # a "::otel-tracker::" line longer than this is output


class StepFailed(Exception):
    """How a command-reported step failed (``step end --failed``)."""


class StepMessageError(OtelTrackerError):
    """A step message that cannot be understood."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never exit: the wrapper reads these too
        raise StepMessageError(message)


def add_step_actions(parser: argparse.ArgumentParser) -> None:
    """``start``, ``advance`` and ``end``: the CLI's ``step`` and the stdout protocol."""
    actions = parser.add_subparsers(dest="op", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start a step (ending the one before it)")
    start.add_argument("name", help="the step's name")
    start.add_argument("--total", type=_whole, help="how many items the step will do")
    start.add_argument("--unit", help="what an item is (batches, files...)")
    advance = actions.add_parser("advance", help="count items done in the running step")
    advance.add_argument("n", nargs="?", type=_whole, default=1, help="items (default 1)")
    end = actions.add_parser("end", help="end the running step")
    end.add_argument("--failed", action="store_true", help="it failed")
    end.add_argument("--message", help="why it failed")


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _protocol_parser() -> _Parser:
    parser = _Parser(prog="::otel-tracker:: step", add_help=False)
    add_step_actions(parser)
    return parser


def message_of(args: argparse.Namespace) -> dict[str, Any]:
    """The datagram for parsed ``step`` arguments."""
    if args.op == "start":
        return {"op": "start", "name": args.name, "total": args.total, "unit": args.unit}
    if args.op == "advance":
        return {"op": "advance", "n": args.n}
    return {"op": "end", "failed": bool(args.failed), "message": args.message}


def parse_protocol_line(text: str) -> dict[str, Any]:
    """``step start "Load data" --total 3`` (after the mark) as a message."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise StepMessageError(str(exc)) from None
    if not words or words[0] != "step":
        raise StepMessageError("expected 'step start|advance|end ...'")
    return message_of(_protocol_parser().parse_args(words[1:]))


def send(message: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Send a message to the run this process is inside (``otel-tracker step``)."""
    env = os.environ if environ is None else environ
    path = env.get(CONTROL_ENV)
    if not path:
        raise OtelTrackerError(
            "not inside a tracked command: 'otel-tracker step' works in a command run by "
            "'otel-tracker run --' or 'otel-tracker pipeline run'"
        )
    data = json.dumps(dict(message)).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(data, path)
        except OSError as exc:
            raise OtelTrackerError(
                f"the tracked run is not listening at {path} ({exc.strerror or exc})"
            ) from None


class CommandSteps:
    """The steps one command reports, as a part of ``run`` under its running step."""

    def __init__(self, run: Any, environ: Mapping[str, str], name: str) -> None:
        self._run = run
        self._environ = environ  # the command's: its TRACEPARENT names the command's step
        self._name = name
        self._lock = threading.Lock()
        self._part: Any = None
        self._step: Any = None
        self._warned: set[str] = set()

    def handle(self, message: Mapping[str, Any]) -> None:
        """Apply one message; a bad one is one warning, never the command's problem."""
        try:
            with self._lock:
                self._apply(message)
        except Exception as exc:  # telemetry: never breaks the command
            self._warn(f"{type(exc).__name__}: {exc}")

    def _apply(self, message: Mapping[str, Any]) -> None:
        op = message.get("op")
        if op == "start":
            name = message.get("name")
            if not isinstance(name, str) or not name.strip():
                raise StepMessageError("a step needs a name")
            self._end_running(None)
            total, unit = message.get("total"), message.get("unit")
            part = self._part_run()
            self._step = part.step(
                name,
                total=total if isinstance(total, int) else None,
                unit=unit if isinstance(unit, str) else None,
            ).start()
        elif op == "advance":
            n = message.get("n", 1)
            if self._step is None:
                raise StepMessageError("'step advance' with no step started")
            self._step.advance(n if isinstance(n, int) and n >= 0 else 1)
        elif op == "end":
            if self._step is None:
                raise StepMessageError("'step end' with no step started")
            why = message.get("message")
            failed = message.get("failed") is True
            self._end_running(StepFailed(why or "reported failed") if failed else None)
        else:
            raise StepMessageError(f"unknown action {op!r}")

    def _end_running(self, error: BaseException | None) -> None:
        step, self._step = self._step, None
        if step is not None:
            step.end(error)

    def _part_run(self) -> Any:
        if self._part is None:
            from ..api import track_run

            self._part = track_run(
                self._name,
                environ={**self._environ, RUN_DIR_ENV: str(self._run.dir)},
                progress="off",
                resources=False,
                install_signal_handlers=False,
                summary_files=False,
            )
        return self._part

    def close(self, returncode: int) -> None:
        """The command exited: end what it left running."""
        with self._lock:
            error = None if returncode == 0 else StepFailed(f"the command exited ({returncode})")
            try:
                self._end_running(error)
                if self._part is not None:
                    self._part.end(error)
            except Exception as exc:
                self._warn(f"{type(exc).__name__}: {exc}")

    def _warn(self, problem: str) -> None:
        if problem not in self._warned and len(self._warned) < 10:
            self._warned.add(problem)
            logger.warning(
                "otel-tracker: a step the command reported was not recorded: %s", problem
            )


class ControlSocket:
    """The datagram socket ``otel-tracker step`` sends to, in a private folder."""

    def __init__(self, steps: CommandSteps) -> None:
        self._steps = steps
        self._dir = tempfile.mkdtemp(prefix="otel-tracker-")  # 0700: only this user
        self.path = os.path.join(self._dir, "control")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._closing = False
        self._thread = threading.Thread(
            target=self._serve, name="otel-tracker-step-control", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data = self._sock.recv(MAX_MESSAGE)
            except OSError:
                return
            if not data:  # close() wakes us with an empty datagram
                if self._closing:
                    return
                continue
            try:
                message = json.loads(data)
            except ValueError:
                continue
            if isinstance(message, dict):
                self._steps.handle(message)

    def close(self) -> None:
        """Handle what was sent before now, then remove the socket."""
        self._closing = True
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"", self.path)  # after every datagram already queued
        self._thread.join(5.0)
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ProtocolFilter:
    """A sink in front of the command's stdout sinks: protocol lines are handled and
    kept out; everything else (partial lines too) passes at once."""

    def __init__(self, sinks: list[Any], steps: CommandSteps) -> None:
        self._sinks = sinks
        self._steps = steps
        self._pending = b""
        self._line_start = True

    def write(self, data: bytes) -> None:
        data, self._pending = self._pending + data, b""
        out = bytearray()
        while data:
            if self._line_start:
                if len(data) < len(PROTOCOL_MARK) and PROTOCOL_MARK.startswith(data):
                    self._pending = data  # may be a mark: wait for more
                    break
                if data.startswith(PROTOCOL_MARK):
                    end = data.find(b"\n")
                    if end >= 0:
                        self._protocol(data[len(PROTOCOL_MARK) : end])
                        data = data[end + 1 :]
                        continue
                    if len(data) <= MAX_PENDING_LINE:
                        self._pending = data
                        break
            end = data.find(b"\n")
            if end < 0:
                out += data
                self._line_start = False
                break
            out += data[: end + 1]
            data = data[end + 1 :]
            self._line_start = True
        if out:
            for sink in self._sinks:
                sink.write(bytes(out))

    def _protocol(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").strip().rstrip("\r")
        try:
            message = parse_protocol_line(text)
        except StepMessageError as exc:
            self._steps._warn(f"{text[:80]!r}: {exc}")
            return
        self._steps.handle(message)

    def finish(self) -> None:
        pending, self._pending = self._pending, b""
        if pending.startswith(PROTOCOL_MARK):  # a last line without its newline
            self._protocol(pending[len(PROTOCOL_MARK) :])
        elif pending:
            for sink in self._sinks:
                sink.write(pending)
        for sink in self._sinks:
            sink.finish()

    def close(self) -> None:
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
