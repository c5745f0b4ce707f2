"""``otel-tracker pipeline run FILE``: a pipeline file's steps as one tracked run.

Each step's command is a child process (output tee'd to the console and to
``<run>/logs/NN-<step>.stdout.log``/``.stderr.log``; signals forwarded; trace
context and run directory in its environment) inside the step's span. A failing
step fails the run and leaves the later steps ``pending``, unless it says
``continue_on_error``: then it is recorded as failed and the run goes on, and
its failure alone does not fail the run (as in CI systems). A step past its
``timeout`` gets SIGTERM, then SIGKILL, and is recorded with result ``timeout``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..contract.paths import slugify
from ..errors import OtelTrackerError
from .artifact_watch import ArtifactWatch
from .command import (
    ChildResult,
    CommandFailed,
    SignalForwarder,
    logs_dir,
    resolve_command,
    run_child,
)
from .command_params import merged_params
from .pipeline_file import PYTHON_PLACEHOLDER, Pipeline, PipelineStep, load_pipeline


class StepTimeout(TimeoutError):
    """A pipeline step ran past its ``timeout``."""


StepTimeout.__module__ = "builtins"  # recorded by its plain name, as CommandFailed


def run_pipeline_file(
    pipeline: Pipeline | str | Path,
    *,
    skip: Sequence[str] = (),
    only: Sequence[str] = (),
    root: str | Path | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    params: Mapping[str, Any] | None = None,
    progress_protocol: bool = False,
    **track_options: Any,
) -> int:
    """Run every enabled step in order; return the exit status for the CLI.
    ``progress_protocol``: each step's command may report steps on its stdout
    (see :mod:`otel_tracker.launch.step_control`).

    The run's params are the file's ``params`` with ``params`` over them; the
    ``key_params``/``ignore_params`` given here win over the file's."""
    from ..api import track_run

    if not isinstance(pipeline, Pipeline):
        pipeline = load_pipeline(pipeline)
    names = pipeline.step_names()
    for flag, given in (("--skip", skip), ("--only", only)):
        unknown = [s for s in given if s not in names]
        if unknown:
            raise OtelTrackerError(
                f"{flag}: no step named {unknown[0]!r} in {pipeline.path}; steps: {', '.join(names)}"
            )
    for step in pipeline.steps:  # every command must exist before the run starts
        if step.enabled and step.name not in skip and (not only or step.name in only):
            _resolve(step)
    track_options.setdefault("scenario", pipeline.scenario)
    if track_options.get("key_params") is None and track_options.get("ignore_params") is None:
        track_options.update(key_params=pipeline.key_params, ignore_params=pipeline.ignore_params)
    # installed before the run exists and kept until its record is final (see launch.py)
    with SignalForwarder() as forwarder:
        run = track_run(
            track_options.pop("name", None) or pipeline.name,
            steps=names,
            root=root,
            install_signal_handlers=False,  # signals go to the running step's child
            expected_durations={
                s.name: s.expected_duration for s in pipeline.steps if s.expected_duration
            },
            params=merged_params(pipeline.params, params, {"pipeline_file": str(pipeline.path)}),
            **track_options,
        )
        logs = logs_dir(run)
        artifacts = ArtifactWatch(run, Path.cwd())
        selected = []
        for number, step in enumerate(pipeline.steps, start=1):
            reason = _skip_reason(step, skip, only)
            if reason:  # up front, so "Step i/N" counts only what will run
                run.skip(step.name, reason)
            else:
                selected.append((number, step))
        failed_code = 0
        with artifacts:
            for number, step in selected:
                if forwarder.received:
                    break  # stopped before or between two steps: the rest stays pending
                result = _run_step(
                    run, step, number, stdout, stderr, logs, forwarder, progress_protocol
                )
                if result.returncode != 0 and not step.continue_on_error:
                    failed_code = _exit_code(result.returncode, result.timed_out)
                    break
            artifacts.finish(stopped=lambda: bool(forwarder.received))
        if forwarder.received:  # the operator stopped the pipeline
            signum = forwarder.received[0]
            run.end_with_signal(signum, forwarded=True)
            return 128 + signum
        run.end(SystemExit(failed_code) if failed_code else None)
        return failed_code


def _run_step(
    run: Any,
    step: PipelineStep,
    number: int,
    out: IO[bytes] | None,
    err: IO[bytes] | None,
    logs: Path | None,
    forwarder: SignalForwarder,
    protocol: bool = False,
) -> ChildResult:
    handle = run.step(step.name).start()
    try:
        result = run_child(
            run,
            [_resolve(step), *step.command[1:]],
            out,
            err,
            logs=logs,
            forwarder=forwarder,
            log_name=f"{number:02d}-{slugify(step.name)}.",
            env=step.env,
            cwd=step.cwd,
            timeout=step.timeout,
            protocol=protocol,
        )
    except OSError as exc:
        handle.end(exc)
        return ChildResult(127, [], False)  # what a shell says for "cannot execute"
    if result.timed_out:
        handle.end(StepTimeout(f"timed out after {step.timeout:g}s"))
    elif result.returncode != 0:
        handle.end(CommandFailed(result.returncode, result.received))
    else:
        handle.end(None)
    return result


def _resolve(step: PipelineStep) -> str:
    """The step's executable, found before anything runs (a clear error, exit 2).
    ``{python}`` is the interpreter running otel-tracker (its venv, its packages)."""
    if step.command[0] == PYTHON_PLACEHOLDER:
        return sys.executable
    try:
        return resolve_command(step.command, cwd=step.cwd)
    except OtelTrackerError as exc:
        raise OtelTrackerError(f"step {step.name!r}: {exc}") from None


def _skip_reason(step: PipelineStep, skip: Sequence[str], only: Sequence[str]) -> str | None:
    if not step.enabled:
        return "disabled in the pipeline file"
    if step.name in skip:
        return "skipped with --skip"
    if only and step.name not in only:
        return "not selected with --only"
    return None


def _exit_code(returncode: int, timed_out: bool) -> int:
    if timed_out:
        return 124  # what timeout(1) exits with
    return 128 - returncode if returncode < 0 else returncode
