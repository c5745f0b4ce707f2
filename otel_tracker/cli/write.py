"""The commands that track something: demo, run, pipeline run / check."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_demo(args: argparse.Namespace) -> int:
    from ..examples.imitation import FULL, QUICK, run_pipeline

    print(f"otel-tracker demo: imitation-learning pipeline ({'full' if args.full else 'quick'})")
    run = run_pipeline(
        FULL if args.full else QUICK,
        seed=args.seed,
        skip=args.skip,
        root=args.root,
        scenario=args.scenario,
        sample_interval=args.sample_interval,
        out=True,
        **_mirror_options(args),
    )
    if run.manifest_path is None:
        print("tracking is disabled or the root is unwritable: no manifest was written")
    else:
        print(f"run {run.run_id} {run.record.status}")
        print(f"manifest: {run.manifest_path}")
    return 0


# -- reading commands: never import the OpenTelemetry SDK ---------------------------------
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
        sample_interval=args.sample_interval,
        auto=args.auto,
        **_mirror_options(args),
    )


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    from ..launch.pipeline_runner import run_pipeline_file

    return run_pipeline_file(
        args.file,
        skip=args.skip,
        only=args.only,
        root=args.root,
        name=args.name,
        sample_interval=args.sample_interval,
        **_mirror_options(args),
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


def _mirror_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"otlp": args.otlp, "prometheus": args.prometheus, "tensorboard": args.tensorboard}
