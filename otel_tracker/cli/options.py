"""What several commands share, declared once: the command factory (help, description
and examples), the argparse value types, and the option bundles with their read-back.

Each command group's module adds its own options next to its handler; an option lives
here only when more than one command takes it.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..version import __version__

RUN_HELP = "a run id, a unique prefix of one, or 'latest'"


def add_command(sub: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    """A top-level command: its one-line help, the same as a sentence for its
    description, and its ``example:`` lines (each ``  otel-tracker ...``)."""
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog="example:\n" + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# -- value types ----------------------------------------------------------------------------
def positive_float(text: str) -> float:
    """An argparse type: a positive, finite number (an interval)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive and finite: {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (a tolerance)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.25 = 25%), got {text}")
    return value


# -- the top-level options: every command reads --root -------------------------------------
def add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"otel-tracker {__version__}")
    parser.add_argument(
        "--root",
        default=None,
        help="runs directory (default: $OTEL_TRACKER_ROOT or ./output/run-tracker)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


# -- reading commands -----------------------------------------------------------------------
def add_run_argument(
    parser: argparse.ArgumentParser, default: str | None = None, default_help: str | None = None
) -> None:
    """The ``run`` positional; optional when ``default_help`` says what it defaults to."""
    if default_help is None:
        parser.add_argument("run", help=RUN_HELP)
    else:
        parser.add_argument(
            "run", nargs="?", default=default, help=f"{RUN_HELP} (default: {default_help})"
        )


def add_json_option(
    parser: argparse.ArgumentParser, help_text: str = "machine-readable output"
) -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """``--baseline`` and ``--tolerance``: what a run's report is judged against."""
    parser.add_argument(
        "--baseline",
        metavar="KEY|FILE",
        help="judge against this baseline (default: the run's own pipeline/scenario baseline)",
    )
    parser.add_argument(
        "--tolerance",
        type=fraction,
        default=None,
        help="throughput this far below the baseline is a regression (default 0.25)",
    )


# -- tracking commands: the tracker settings of demo, run and pipeline run ------------------
def add_tracker_settings(parser: argparse.ArgumentParser) -> None:
    """``--sample-interval`` and the mirrors (``--otlp``, ``--prometheus``,
    ``--tensorboard``); :func:`tracker_settings` reads them back."""
    parser.add_argument(
        "--sample-interval",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="resource sampling interval (default: $OTEL_TRACKER_SAMPLE_INTERVAL or 5)",
    )
    group = parser.add_argument_group("mirrors (each needs its pip extra)")
    group.add_argument(
        "--otlp",
        nargs="?",
        const=True,
        default=None,
        metavar="ENDPOINT",
        help="send spans and metrics over OTLP (default endpoint: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    group.add_argument(
        "--prometheus",
        nargs="?",
        const=True,
        default=None,
        metavar="[HOST:]PORT",
        help="serve /metrics while the run lives (default 127.0.0.1:9464; port 0: any free one)",
    )
    group.add_argument(
        "--tensorboard",
        action="store_const",
        const=True,
        default=None,
        help="write TensorBoard event files under <run>/tensorboard/",
    )


def add_param_options(parser: argparse.ArgumentParser) -> None:
    """``--param``, ``--key-params`` and ``--ignore-params`` of ``run`` and ``pipeline
    run``; :func:`param_settings` reads them back."""
    group = parser.add_argument_group("params and history")
    group.add_argument(
        "--param",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="record a param (repeatable; numbers are numbers): list, compare and --where see it",
    )
    group.add_argument(
        "--key-params",
        type=name_list,
        default=None,
        metavar="NAME[,NAME...]",
        help="ETA history and baselines only from runs with the same values of these params",
    )
    group.add_argument(
        "--ignore-params",
        type=name_list,
        default=None,
        metavar="NAME[,NAME...]",
        help="key history on every param but these (seeds); not with --key-params",
    )


def name_list(text: str) -> list[str]:
    """An argparse type: comma-separated names (``epochs,n``)."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...], got {text!r}")
    return names


def param_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the options added by :func:`add_param_options`."""
    from ..launch.command_params import explicit_params

    return {
        "params": explicit_params(args.param),
        "key_params": args.key_params,
        "ignore_params": args.ignore_params,
    }


def tracker_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the tracker settings added by :func:`add_tracker_settings`."""
    return {
        "sample_interval": args.sample_interval,
        "otlp": args.otlp,
        "prometheus": args.prometheus,
        "tensorboard": args.tensorboard,
    }
