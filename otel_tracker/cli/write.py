"""The commands that track something: ``run -- CMD`` and ``pipeline run`` / ``check``.

The OpenTelemetry SDK is imported when a command runs, never when the parser is built.
"""

from __future__ import annotations

import argparse
from typing import Any

from .options import (
    add_command,
    add_param_options,
    add_tracker_settings,
    param_settings,
    tracker_settings,
)

PIPELINE_FILE_HELP = "pipeline file (.toml, .yaml, .yml)"


def add_commands(sub: Any) -> None:
    """Add ``run`` and ``pipeline`` to the main parser's subcommands."""
    _add_run(sub)
    _add_pipeline(sub)


def _add_run(sub: Any) -> None:
    wrap = add_command(
        sub,
        "run",
        "run any command as a tracked run (exits with the command's status)",
        "  otel-tracker run -- python train.py --epochs 3\n"
        "  otel-tracker run --key-params epochs -- python train.py --epochs 3 --seed 1\n"
        "  otel-tracker run --name nightly-etl --scenario full -- ./etl.sh\n"
        "  otel-tracker run --otlp http://localhost:4317 --tensorboard -- python train.py\n"
        "  otel-tracker run --auto -- python train.py   # the script reports itself, unchanged",
    )
    wrap.add_argument(
        "--name", help="run name (default: the command's name; a Python script's or module's own)"
    )
    wrap.add_argument(
        "--auto",
        action="store_true",
        help="a Python command reports its own process as a step of the run, with no code "
        "changes (a sitecustomize bootstrap, as opentelemetry-instrument uses)",
    )
    wrap.add_argument("--scenario", help="scenario label")
    add_protocol_option(wrap)
    add_param_options(wrap)
    add_tracker_settings(wrap)
    wrap.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    wrap.set_defaults(func=cmd_run)


def _add_pipeline(sub: Any) -> None:
    pipeline = add_command(
        sub,
        "pipeline",
        "run or check a pipeline file (TOML or YAML: steps with commands)",
        "  otel-tracker pipeline run examples/imitation_pipeline.toml\n"
        "  otel-tracker pipeline run etl.toml --skip Load --otlp\n"
        "  otel-tracker pipeline check etl.yaml",
    )
    actions = pipeline.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_file = actions.add_parser(
        "run",
        help="run every enabled step in order as one tracked run",
        description="Run a pipeline file; exits with the failing step's code (124: timeout).",
    )
    run_file.add_argument("file", help=PIPELINE_FILE_HELP)
    run_file.add_argument(
        "--skip", action="append", default=[], metavar="STEP", help="skip a step (repeatable)"
    )
    run_file.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="STEP",
        help="run only these steps (repeatable)",
    )
    run_file.add_argument("--name", help="run name (default: the file's name)")
    run_file.add_argument("--scenario", help="scenario label (default: the file's)")
    add_protocol_option(run_file)
    add_param_options(run_file)
    add_tracker_settings(run_file)
    run_file.set_defaults(func=cmd_pipeline_run)
    check = actions.add_parser("check", help="validate a pipeline file and list its steps")
    check.add_argument("file", help=PIPELINE_FILE_HELP)
    check.set_defaults(func=cmd_pipeline_check)


def add_protocol_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress-protocol",
        action="store_true",
        help="read steps from the command's stdout lines that start '::otel-tracker::' "
        "(e.g. '::otel-tracker:: step start \"Load\" --total 3'); they are kept out of "
        "the console and the log",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from ..launch.command import run_command

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    return run_command(
        command,
        name=args.name,
        scenario=args.scenario,
        root=args.root,
        auto=args.auto,
        progress_protocol=args.progress_protocol,
        **param_settings(args),
        **tracker_settings(args),
    )


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    from ..launch.pipeline_runner import run_pipeline_file

    return run_pipeline_file(
        args.file,
        skip=args.skip,
        only=args.only,
        root=args.root,
        name=args.name,
        progress_protocol=args.progress_protocol,
        **param_settings(args),
        **tracker_settings(args),
        **({"scenario": args.scenario} if args.scenario else {}),
    )


def cmd_pipeline_check(args: argparse.Namespace) -> int:
    from ..launch.pipeline_file import load_pipeline

    pipeline = load_pipeline(args.file)
    print(f"{pipeline.path}: pipeline {pipeline.name!r}, {len(pipeline.steps)} steps")
    for number, step in enumerate(pipeline.steps, start=1):
        flags = [
            f
            for f, on in (
                ("disabled", not step.enabled),
                ("continue_on_error", step.continue_on_error),
            )
            if on
        ]
        extra = f"  [{', '.join(flags)}]" if flags else ""
        print(f"  {number}. {step.name}: {' '.join(step.command)}{extra}")
    return 0
