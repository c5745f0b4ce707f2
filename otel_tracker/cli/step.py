"""``step start|advance|end``: steps and progress from a shell script or any program
inside ``otel-tracker run`` / ``pipeline run`` (see :mod:`otel_tracker.launch.step_control`)."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_command


def add_commands(sub: Any) -> None:
    """Add ``step`` to the main parser's subcommands."""
    from ..launch.step_control import add_step_actions

    step = add_command(
        sub,
        "step",
        "report a step of a command tracked by 'otel-tracker run' or 'pipeline run', from "
        "any language (start ends the step before it)",
        '  otel-tracker step start "Load data" --total 3 --unit files\n'
        "  otel-tracker step advance            # one more item done (or: advance 10)\n"
        "  otel-tracker step end                # or: end --failed --message 'no input'",
    )
    add_step_actions(step)
    step.set_defaults(func=cmd_step)


def cmd_step(args: argparse.Namespace) -> int:
    from ..launch.step_control import message_of, send

    send(message_of(args))
    return 0
