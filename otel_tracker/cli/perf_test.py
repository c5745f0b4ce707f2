"""``perf-test``: the CLI over :mod:`otel_tracker.perftest`, which runs the scenarios."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_command, fraction


def add_commands(sub: Any) -> None:
    """Add ``perf-test`` to the main parser's subcommands."""
    perf = add_command(
        sub,
        "perf-test",
        "run performance smoke tests and compare them with their baselines "
        "(exit 1 on a regression, a critical threshold or a limit not met)",
        "  otel-tracker perf-test --scenario perf/scenarios.toml\n"
        "  otel-tracker perf-test --scenario perf/scenarios.toml --baseline perf/baseline.json\n"
        "  otel-tracker perf-test --scenario perf/scenarios.toml --save-baseline\n"
        "  otel-tracker perf-test --default   # the shipped scenarios of the reference pipeline",
    )
    source = perf.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", metavar="FILE", help="scenario file (.toml, .yaml, .yml)")
    source.add_argument(
        "--default", action="store_true", help="the shipped scenarios of the reference pipeline"
    )
    perf.add_argument(
        "--baseline",
        metavar="FILE|DIR",
        help="a perf_test_results.json, a baseline file or a directory of them "
        "(default: <root>/baselines)",
    )
    perf.add_argument(
        "--tolerance",
        type=fraction,
        default=None,
        help="a metric this far worse than its baseline is a regression (default: the file's, or 0.25)",
    )
    perf.add_argument(
        "--output", metavar="DIR", help="results directory (default: <root>/perf-tests/<time>)"
    )
    perf.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only these scenarios"
    )
    perf.add_argument(
        "--save-baseline",
        action="store_true",
        help="store this invocation's figures as the scenarios' baselines under the root",
    )
    perf.add_argument(
        "--strict-hardware",
        action="store_true",
        help="do not compare with a baseline recorded on other hardware (CPU model and count, "
        "GPU model and count) or on unknown hardware: verdict hardware-mismatch, exit 1 "
        "(default: compare, with a loud note)",
    )
    perf.set_defaults(func=cmd_perf_test)


def cmd_perf_test(args: argparse.Namespace) -> int:
    from ..perftest.cli import run_perf_test

    return run_perf_test(args)
