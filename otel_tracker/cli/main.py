"""The ``otel-tracker`` command line: a thin layer over the library.

Read-only commands must start fast, so nothing here imports the OpenTelemetry
SDK at module level; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence

from ..errors import OtelTrackerError
from ..version import __version__
from . import baseline as cli_analysis
from . import read as cli_read
from . import write as cli_write

EPILOG_DEMO = """example:
  otel-tracker demo                 # quick run, a few seconds
  otel-tracker demo --full --seed 3 # the long version
  otel-tracker --root /tmp/runs demo --skip "Fine-tune"
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive and finite: {text!r}")
    return value


def _add_sample_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample-interval",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="resource sampling interval (default: $OTEL_TRACKER_SAMPLE_INTERVAL or 5)",
    )


def _add_mirror_options(parser: argparse.ArgumentParser) -> None:
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


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        metavar="KEY|FILE",
        help="judge against this baseline (default: the run's own pipeline/scenario baseline)",
    )
    parser.add_argument(
        "--tolerance",
        type=cli_analysis.fraction,
        default=None,
        help="throughput this far below the baseline is a regression (default 0.25)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="otel-tracker",
        description="Track ML and data pipeline runs with OpenTelemetry.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  otel-tracker demo\n",
    )
    parser.add_argument("--version", action="version", version=f"otel-tracker {__version__}")
    parser.add_argument(
        "--root",
        default=None,
        help="runs directory (default: $OTEL_TRACKER_ROOT or ./output/run-tracker)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the tracked reference imitation-learning pipeline",
        description="Run the reference imitation-learning pipeline, tracked, and print where its manifest is.",
        epilog=EPILOG_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--full", action="store_true", help="the long version (minutes, not seconds)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument("--scenario", default=None, help="scenario label recorded in the manifest")
    _add_sample_interval(demo)
    _add_mirror_options(demo)
    demo.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP",
        help='skip an optional step: "Pretrain BC" or "Fine-tune" (repeatable)',
    )
    demo.set_defaults(func=cli_write.cmd_demo)

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog="example:\n" + example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run_help = "a run id, a unique prefix of one, or 'latest'"
    ls = command(
        "list",
        "list runs, newest first, with their crash-aware status",
        "  otel-tracker list --status failed,aborted --since 2d\n  otel-tracker list --name 'imitation*' --json",
    )
    ls.add_argument("--limit", type=int, default=20, help="show at most N runs (default 20)")
    ls.add_argument("--all", action="store_true", help="show every run")
    ls.add_argument(
        "--status",
        action="append",
        default=[],
        help="running, completed, failed, cancelled, aborted or stuck (comma-separated or repeated)",
    )
    ls.add_argument(
        "--since", help="started at or after: 2d, 12h, today, 2026-11-20, 2026-11-20T08:30"
    )
    ls.add_argument("--until", help="started at or before (same forms as --since)")
    ls.add_argument("--name", help="run name (shell-style wildcards: 'imitation*')")
    ls.add_argument("--scenario", help="scenario (shell-style wildcards)")
    ls.add_argument(
        "--outdated",
        action="store_true",
        help="only finished runs older than OTEL_TRACKER_OUTDATED_AFTER (default 30 days)",
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cli_read.cmd_list)

    show = command(
        "show",
        "show one run in full",
        "  otel-tracker show latest\n  otel-tracker show 20261123T2137",
    )
    show.add_argument("run", help=run_help)
    show.add_argument("--json", action="store_true", help="the manifest plus the inferred status")
    _add_analysis_options(show)
    show.set_defaults(func=cli_read.cmd_show)

    summary = command(
        "summary",
        "print a run's report: key figures, anomalies and recommendations",
        "  otel-tracker summary latest\n"
        "  otel-tracker summary latest --format json --tolerance 0.1\n"
        "  otel-tracker summary 20261123T2137 --baseline baselines/nightly.json",
    )
    summary.add_argument("run", help=run_help)
    summary.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    _add_analysis_options(summary)
    summary.set_defaults(func=cli_read.cmd_summary)

    export = command(
        "export",
        "write a run's report to a file",
        "  otel-tracker export latest --format markdown --output run.md\n"
        "  otel-tracker export latest --format json --output -   # to standard output",
    )
    export.add_argument("run", help=run_help)
    export.add_argument("--format", choices=("markdown", "json"), default="markdown")
    export.add_argument(
        "--output", "-o", required=True, help="file to write ('-': standard output)"
    )
    _add_analysis_options(export)
    export.set_defaults(func=cli_read.cmd_export)

    wrap = command(
        "run",
        "run any command as a tracked run (exits with the command's status)",
        "  otel-tracker run -- python train.py --epochs 3\n"
        "  otel-tracker run --name nightly-etl --scenario full -- ./etl.sh\n"
        "  otel-tracker run --otlp http://localhost:4317 --tensorboard -- python train.py\n"
        "  otel-tracker run --auto -- python train.py   # the script reports itself, unchanged",
    )
    wrap.add_argument("--name", help="run name (default: the command's name)")
    wrap.add_argument(
        "--auto",
        action="store_true",
        help="a Python command reports its own process as a step of the run, with no code "
        "changes (a sitecustomize bootstrap, as opentelemetry-instrument uses)",
    )
    wrap.add_argument("--scenario", help="scenario label")
    _add_sample_interval(wrap)
    _add_mirror_options(wrap)
    wrap.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    wrap.set_defaults(func=cli_write.cmd_run)

    pipeline = command(
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
    run_file.add_argument("file", help="pipeline file (.toml, .yaml, .yml)")
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
    _add_sample_interval(run_file)
    _add_mirror_options(run_file)
    run_file.set_defaults(func=cli_write.cmd_pipeline_run)
    check = actions.add_parser("check", help="validate a pipeline file and list its steps")
    check.add_argument("file", help="pipeline file (.toml, .yaml, .yml)")
    check.set_defaults(func=cli_write.cmd_pipeline_check)

    status = command(
        "status",
        "show a run's progress and ETA now, from its files",
        "  otel-tracker status latest\n  otel-tracker status 20261123T2137 --json",
    )
    status.add_argument("run", nargs="?", default="latest", help=run_help + " (default: latest)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cli_read.cmd_status)

    watch = command(
        "watch",
        "follow a run's progress until it ends (exit 0 if it completed, 1 otherwise)",
        "  otel-tracker watch            # the latest running run\n  otel-tracker watch 20261123T2137 --interval 5",
    )
    watch.add_argument(
        "run", nargs="?", default=None, help=run_help + " (default: the latest running run)"
    )
    watch.add_argument(
        "--interval", type=_positive_float, default=2.0, help="seconds between reads (default 2)"
    )
    watch.set_defaults(func=cli_read.cmd_watch)

    recover = command(
        "recover",
        "finalize a dead run's manifest as aborted, keeping its partial data",
        "  otel-tracker recover 20261123T2137",
    )
    recover.add_argument("run", help=run_help)
    recover.set_defaults(func=cli_read.cmd_recover)
    cli_analysis.add_commands(sub, command)
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
