"""``otel-tracker run -- CMD``: track any command as a run.

The command runs as a child process with its stdout and stderr teed to the
console and to ``<run>/logs/stdout.log`` and ``stderr.log``. Its whole process
tree is sampled (it is part of this process's tree). SIGINT, SIGTERM and SIGHUP
sent to the wrapper are forwarded to the child; a second one kills it. The
wrapper exits with the child's exit code, or 128 + N when a signal ended it.
The W3C trace context (``TRACEPARENT``) and the run directory are put in the
child's environment, so its own spans can join the trace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import CommandNotRunnableError, OtelTrackerError
from .paths import RUN_DIR_ENV
from .redact import RedactedLines, redact_argv
from .signals import signal_name

TIMEOUT_GRACE_S = 5.0  # between SIGTERM and SIGKILL for a step past its timeout
FORWARDED = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s
)


class CommandFailed(Exception):
    """The wrapped command ended with a non-zero status (or a signal)."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        if returncode < 0:
            super().__init__(f"command killed by {signal_name(-returncode)}")
        else:
            super().__init__(f"command exited with code {returncode}")


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
        return str(path)
    found = shutil.which(program)
    if found is None:
        raise CommandNotRunnableError(f"command not found on PATH: {program}", 127)
    return found


def _tee(source: IO[bytes], console: IO[bytes], log_path: Path | None) -> None:
    log = None
    if log_path is not None:
        try:
            # the console gets the command's output as is; the file keeps no secrets
            log = RedactedLines(open(log_path, "ab"))  # noqa: SIM115 - closed below
        except OSError:
            log = None
    try:
        for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
            for sink in (console, log):
                if sink is None:
                    continue
                try:
                    sink.write(chunk)
                    sink.flush()
                except (OSError, ValueError):
                    pass  # a closed console or a full disk must not stop the child's output
    finally:
        if log is not None:
            log.close()


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
    **track_options: Any,
) -> int:
    """Run ``argv`` tracked; return the exit status the wrapper should exit with.

    ``auto=True`` makes a Python child report its own process as a step, with no
    change to its code (see :mod:`otel_tracker.auto`).
    ``track_options`` go to :func:`~otel_tracker.track_run` (``otlp=``, ``prometheus=``...).
    """
    from .api import track_run

    executable = resolve_command(argv)
    command = [executable, *argv[1:]]
    step_name = Path(argv[0]).name
    run = track_run(
        name or step_name,
        steps=[step_name],
        scenario=scenario,
        root=root,
        sample_interval=sample_interval,
        install_signal_handlers=False,  # the wrapper forwards signals to the child instead
        # a flag's value (``--api-key X``) is only a secret next to its flag: redact as argv
        params={"command": redact_argv(argv)},
        **track_options,
    )
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    logs = logs_dir(run)
    started = time.time()
    try:
        # before the step starts: whoever sees it running may signal at once
        with SignalForwarder() as forwarder:
            step = run.step(step_name).start()
            result = run_child(
                run, command, out, err, logs=logs, forwarder=forwarder, env=_auto_env(auto)
            )
    except OSError as exc:
        step.end(exc)
        run.end(exc)
        raise CommandNotRunnableError(
            f"cannot start {argv[0]}: {exc.strerror or exc}", 126
        ) from None
    register_artifacts(run, started)
    return _finish(run, step, result.returncode, result.received)


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
    out: IO[bytes],
    err: IO[bytes],
    *,
    logs: Path | None,
    forwarder: SignalForwarder,
    log_name: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> ChildResult:
    """Run one child with tee'd output, forwarded signals and an optional timeout
    (SIGTERM, then SIGKILL after a grace period). ``OSError`` if it cannot start."""
    proc = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**child_environment(run), **(env or {})},
        cwd=cwd,
    )
    paths = {
        stream: logs / f"{log_name}{stream}.log" if logs else None
        for stream in ("stdout", "stderr")
    }
    pumps = [
        threading.Thread(target=_tee, args=(proc.stdout, out, paths["stdout"]), daemon=True),
        threading.Thread(target=_tee, args=(proc.stderr, err, paths["stderr"]), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    timed_out = False
    forwarder.attach(proc)
    try:
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate()
            try:
                returncode = proc.wait(timeout=TIMEOUT_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
    finally:
        forwarder.attach(None)
    for pump in pumps:
        pump.join(timeout=5)
    for path in paths.values():
        if path is not None and path.exists():
            run.add_artifact(path, kind="log")
    return ChildResult(returncode, list(forwarder.received), timed_out)


def logs_dir(run: Any) -> Path | None:
    if run.dir is None:
        return None
    logs = Path(run.dir) / "logs"
    try:
        logs.mkdir(exist_ok=True)
    except OSError:
        return None
    return logs


def register_artifacts(run: Any, started: float) -> None:
    """What the command left in its working directory (never fails the run)."""
    from .artifacts import scan

    if run.dir is None:
        return  # tracking is off or the root is unusable: nowhere to record them
    try:
        exclude = (Path(run.dir).parent,) if run.dir is not None else ()
        found, problems = scan(Path.cwd(), since=started, exclude=exclude)
    except Exception as exc:
        run.record.warn(f"artifact scan failed: {exc}")
        return
    for artifact in found:
        run.add_artifact(artifact.path, kind=artifact.kind)
    for problem in problems:
        run.record.warn(problem)


def _finish(run: Any, step: Any, returncode: int, received: list[int]) -> int:
    if returncode == 0:
        step.end(None)
        run.end(None)
        return 0
    failure = CommandFailed(returncode)
    step.end(failure)
    if returncode < 0:
        signum = -returncode
        run.end_with_signal(signum, forwarded=bool(received))
        return 128 + signum
    run.end(SystemExit(returncode))
    return returncode


class SignalForwarder:
    """Forwards SIGINT/SIGTERM/SIGHUP to the running child; a second signal kills it.

    Installed for the whole tracked run, not per child: a signal that arrives
    before a child exists (or between two steps) is kept and handed to the next
    child at once, so the wrapper itself is never killed by it.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
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

    def attach(self, proc: subprocess.Popen[bytes] | None) -> None:
        self._proc = proc
        if proc is not None and self.received:
            self._send(proc)

    def _forward(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self._proc is not None:
            self._send(self._proc)

    def _send(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            if len(self.received) > 1:
                proc.kill()  # a second signal: the child had its chance
            else:
                proc.send_signal(self.received[0])
        except ProcessLookupError:
            pass
