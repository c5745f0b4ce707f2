"""``otel-tracker run -- CMD``: track any command as a run.

The command runs as a child process in a process group of its own (see
:mod:`otel_tracker.launch.child_process`: the terminal, signals and the wrapper's death
reach all of it) with its stdout and stderr copied to the console, above the live
progress display on a terminal, and raw to ``<run>/logs/stdout.log`` and
``stderr.log`` (see :mod:`otel_tracker.launch.child_output`). Its whole process tree is
sampled (it is part of this process's tree). SIGINT, SIGTERM and SIGHUP sent to
the wrapper are forwarded to the command's group; a second one kills the group,
and the run is still recorded as cancelled by the first. The wrapper exits with
the child's exit code, or 128 + N when a signal ended it. The W3C trace context
(``TRACEPARENT``) and the run directory are put in the child's environment, so
its own spans can join the trace.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..contract.paths import RUN_DIR_ENV
from ..errors import CommandNotRunnableError, OtelTrackerError
from ..record.signals import signal_name
from ..redact.text import redact_argv
from .artifact_watch import ArtifactWatch
from .child_output import ChildOutput, console_sink
from .child_process import ChildProcess
from .command_params import command_options, merged_params
from .step_control import CONTROL_ENV, CommandSteps, ControlSocket, ProtocolFilter

logger = logging.getLogger(__name__)

TIMEOUT_GRACE_S = 5.0  # between SIGTERM and SIGKILL for a step past its timeout
FORWARD_INTERVAL_S = 5.0  # joined children's spans to OTLP: the SDK's batch delay
FORWARDED = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s
)


class CommandFailed(Exception):
    """The wrapped command ended with a non-zero status (or a signal)."""

    def __init__(self, returncode: int, received: Sequence[int] = ()) -> None:
        self.returncode = returncode
        if received and returncode < 0:  # ended by our signal, not by its own choice
            first = signal_name(received[0])
            message = f"stopped: {first} from the operator"
            if returncode == -signal.SIGKILL and len(received) > 1:
                message += f", killed with SIGKILL at the second {signal_name(received[1])}"
        elif returncode < 0:
            message = f"command killed by {signal_name(-returncode)}"
        else:
            message = f"command exited with code {returncode}"
        super().__init__(message)


# Recorded by its plain name: a step's note reads "CommandFailed: command exited with
# code 3", not an internal class path (OpenTelemetry names an exception by module).
CommandFailed.__module__ = "builtins"


def resolve_command(argv: Sequence[str], cwd: Path | None = None) -> str:
    """The executable path of ``argv[0]`` (a relative path counts from ``cwd``), or a
    clear error, before any run exists."""
    if not argv:
        raise OtelTrackerError("no command given: otel-tracker run [options] -- CMD [ARGS...]")
    program = argv[0]
    if os.sep in program:
        path = Path(program)
        if cwd is not None and not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise CommandNotRunnableError(f"command not found: {program}", 127)
        if path.is_dir() or not os.access(path, os.X_OK):
            raise CommandNotRunnableError(f"not an executable file: {program}", 126)
        # Path("./prog") prints as "prog", which exec would look up on PATH instead
        return str(path) if path.is_absolute() else os.path.join(os.curdir, path)
    found = shutil.which(program)
    if found is None:
        raise CommandNotRunnableError(f"command not found on PATH: {program}", 127)
    return found


def child_environment(run: Any) -> dict[str, str]:
    """The child's environment: ours plus the trace context and the run directory.

    A child that tracks runs of its own joins the trace, and with ``--otlp`` it
    sends to the same collector, so the collector sees one trace.
    """
    from opentelemetry.propagate import inject

    env = dict(os.environ)
    carrier: dict[str, str] = {}
    step_span = getattr(run, "_current_span", lambda: None)()
    from opentelemetry import trace

    context = trace.set_span_in_context(step_span) if step_span is not None else None
    inject(carrier, context=context)
    if "traceparent" in carrier:
        env["TRACEPARENT"] = carrier["traceparent"]
    if "tracestate" in carrier:
        env["TRACESTATE"] = carrier["tracestate"]
    if run.dir is not None:
        env[RUN_DIR_ENV] = str(run.dir)
    mirrors = getattr(getattr(run, "config", None), "mirrors", None)
    if mirrors is not None and mirrors.otlp:
        env["OTEL_TRACKER_OTLP"] = "true"
        if mirrors.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = mirrors.otlp_endpoint
    return env


def run_command(
    argv: Sequence[str],
    *,
    name: str | None = None,
    scenario: str | None = None,
    root: str | os.PathLike[str] | None = None,
    sample_interval: float | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    auto: bool = False,
    params: Mapping[str, Any] | None = None,
    progress_protocol: bool = False,
    **track_options: Any,
) -> int:
    """Run ``argv`` tracked; return the exit status the wrapper should exit with.

    The run's params are the command (redacted), its long options (see
    :mod:`otel_tracker.launch.command_params`) and ``params`` over them.

    ``auto=True`` makes a Python child report its own process as a step, with no
    change to its code (see :mod:`otel_tracker.launch.auto`).
    ``progress_protocol=True`` reads steps from the command's stdout lines that start
    ``::otel-tracker::`` (see :mod:`otel_tracker.launch.step_control`).
    ``track_options`` go to :func:`~otel_tracker.track_run` (``otlp=``, ``prometheus=``...).
    """
    from ..api import track_run

    executable = resolve_command(argv)
    command = [executable, *argv[1:]]
    step_name = Path(argv[0]).name
    redacted = redact_argv(argv)
    # installed before the run exists and kept until its record is final: a signal at
    # any moment reaches the command (at once if it comes before the command exists)
    with SignalForwarder() as forwarder:
        run = track_run(
            name or run_name(argv),
            steps=[step_name],
            scenario=scenario,
            root=root,
            sample_interval=sample_interval,
            install_signal_handlers=False,  # the wrapper forwards signals to the child instead
            # a flag's value (``--api-key X``) is only a secret next to its flag: redact as argv;
            # "command" first (shown first) and last (no --param replaces it)
            params=merged_params(
                {"command": redacted}, command_options(redacted), params, {"command": redacted}
            ),
            **track_options,
        )
        logs = logs_dir(run)
        step = None
        with ArtifactWatch(run, Path.cwd()) as artifacts:
            try:
                step = run.step(step_name).start()
                result = run_child(
                    run,
                    command,
                    stdout,
                    stderr,
                    logs=logs,
                    forwarder=forwarder,
                    env=_auto_env(auto),
                    protocol=progress_protocol,
                )
            except OSError as exc:
                artifacts.stop()
                if step is not None:
                    step.end(exc)
                run.end(exc)
                raise CommandNotRunnableError(
                    f"cannot start {argv[0]}: {exc.strerror or exc}", 126
                ) from None
            artifacts.finish(stopped=lambda: bool(forwarder.received))
        return _finish(run, step, result)


def _auto_env(auto: bool) -> dict[str, str] | None:
    if not auto:
        return None
    from .auto import auto_environment

    current = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    return dict(auto_environment(current))


@dataclass(frozen=True)
class ChildResult:
    """How a child process ended."""

    returncode: int
    received: list[int]
    timed_out: bool


def run_child(
    run: Any,
    command: Sequence[str],
    out: IO[bytes] | None,
    err: IO[bytes] | None,
    *,
    logs: Path | None,
    forwarder: SignalForwarder,
    log_name: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    protocol: bool = False,
) -> ChildResult:
    """Run one child with copied output, forwarded signals and an optional timeout
    (SIGTERM, then SIGKILL after a grace period, to its group). ``out``/``err``:
    where its output goes besides the logs (``None``: this process's console).
    The steps it reports (``otel-tracker step``, and with ``protocol`` its stdout's
    ``::otel-tracker::`` lines) become a part of the run under the running step
    (:mod:`otel_tracker.launch.step_control`). ``OSError`` if it cannot start."""
    child_env = {**child_environment(run), **(env or {})}
    steps = CommandSteps(run, child_env, Path(command[0]).name)
    control = _control_socket(steps)
    if control is not None:
        child_env[CONTROL_ENV] = control.path
    try:
        child = ChildProcess(command, env=child_env, cwd=cwd)
    except BaseException:
        if control is not None:
            control.close()
        raise
    paths = {
        stream: logs / f"{log_name}{stream}.log" if logs else None
        for stream in ("stdout", "stderr")
    }
    reporter = getattr(run, "reporter", None)
    output = ChildOutput(
        [
            (child.proc.stdout, console_sink(reporter, "stdout", out), paths["stdout"]),
            (child.proc.stderr, console_sink(reporter, "stderr", err), paths["stderr"]),
        ],
        wrap_first=(lambda sinks: ProtocolFilter(sinks, steps)) if protocol else None,
    )
    timed_out = threading.Event()
    if timeout is not None:
        threading.Thread(
            target=_enforce_timeout, args=(child, timeout, timed_out), daemon=True
        ).start()
    if getattr(getattr(run, "mirrors", None), "part_spans", None) is not None:
        threading.Thread(
            target=_forward_until, args=(run, child.exited), name="otel-tracker-spans", daemon=True
        ).start()
    forwarder.attach(child)
    returncode = -1
    try:
        returncode = child.wait()
    except BaseException:  # the wrapper itself is failing: the command must not outlive it
        child.kill()
        child.wait()
        raise
    finally:
        forwarder.attach(None)
        # what the command wrote before it exited, not what a process it left behind
        # (still holding the pipes) may write later: that must not hold the record
        output.drain()
        if control is not None:
            control.close()  # after the steps it sent before it exited
        steps.close(returncode)
    for path in paths.values():
        if path is not None and path.exists():
            run.add_artifact(path, kind="log")
    forward_joined_spans(run)
    return ChildResult(returncode, list(forwarder.received), timed_out.is_set())


def _control_socket(steps: CommandSteps) -> ControlSocket | None:
    try:
        return ControlSocket(steps)
    except OSError as exc:  # no private temporary folder: 'otel-tracker step' says so
        logger.warning("otel-tracker: 'otel-tracker step' will not reach this run: %s", exc)
        return None


def _enforce_timeout(child: ChildProcess, timeout: float, timed_out: threading.Event) -> None:
    if child.exited.wait(timeout):
        return
    timed_out.set()
    child.signal(signal.SIGTERM)
    if not child.exited.wait(TIMEOUT_GRACE_S):
        child.kill()


_INTERPRETER = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?(\.exe)?$", re.IGNORECASE)


def run_name(argv: Sequence[str]) -> str:
    """A run's default name: the command's name, but for a Python interpreter the
    script's (``python train.py`` -> ``train``) or the module's (``-m pkg.train``),
    so that unrelated scripts do not share one history."""
    program = Path(argv[0]).name
    if not _INTERPRETER.match(program):
        return program
    from .auto import program_name

    target = program_name(argv)
    if target.endswith(".py"):
        return target[: -len(".py")] or target
    return program if target in ("python", "python -", "python -c") else target


def _forward_until(run: Any, exited: threading.Event) -> None:
    # a long-running child's finished steps reach the collector while it still runs,
    # about as soon as its own batch exporter would have sent them
    while not exited.wait(FORWARD_INTERVAL_S):
        forward_joined_spans(run)


def forward_joined_spans(run: Any) -> None:
    """Hand the spans that joined children left in the run's parts to our OTLP mirror
    now, so they leave while the run goes on (see :mod:`otel_tracker.exporters.handoff`)."""
    mirrors = getattr(run, "mirrors", None)
    if run.dir is None or getattr(run, "join", None) is not None or mirrors is None:
        return
    from ..exporters.handoff import forward_part_spans

    forward_part_spans(mirrors, Path(run.dir))


def logs_dir(run: Any) -> Path | None:
    if run.dir is None:
        return None
    logs = Path(run.dir) / "logs"
    try:
        logs.mkdir(exist_ok=True)
        if logs.is_symlink() or not logs.is_dir():  # logs are written only inside the run
            raise OSError(f"{logs} is not a directory of the run")
    except OSError as exc:
        run.record.warn(f"command output not logged: {exc}")
        return None
    return logs


def _finish(run: Any, step: Any, result: ChildResult) -> int:
    returncode, received = result.returncode, result.received
    if returncode == 0:
        step.end(None)
        run.end(None)
        return 0
    step.end(CommandFailed(returncode, received))
    if returncode < 0 and received:
        # the operator cancelled, even if a second signal had us kill the command
        run.end_with_signal(received[0], forwarded=True)
        return 128 + received[0]
    if returncode < 0:
        run.end_with_signal(-returncode)
        return 128 - returncode
    run.end(SystemExit(returncode))
    return returncode


class SignalForwarder:
    """Forwards SIGINT/SIGTERM/SIGHUP to the running child's process group; a second
    signal kills the group.

    Installed for the whole tracked run, not per child: a signal that arrives
    before a child exists (or between two steps) is kept and handed to the next
    child at once, so the wrapper itself is never killed by it.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._child: ChildProcess | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalForwarder:
        if threading.current_thread() is threading.main_thread():
            for sig in FORWARDED:
                try:
                    self._previous[sig] = signal.signal(sig, self._forward)
                except (OSError, ValueError):
                    continue
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError):
                pass

    def attach(self, child: ChildProcess | None) -> None:
        self._child = child
        if child is not None and self.received:
            self._send(child)

    def _forward(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self._child is not None:
            self._send(self._child)

    def _send(self, child: ChildProcess) -> None:
        if len(self.received) > 1:
            child.kill()  # a second signal: the command had its chance
        else:
            child.signal(self.received[0])
