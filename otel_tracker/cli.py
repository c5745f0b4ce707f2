"""The ``otel-tracker`` command line: a thin layer over the library.

Read-only commands must start fast, so nothing here imports the OpenTelemetry
SDK at module level; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import OtelTrackerError

EPILOG_DEMO = """example:
  otel-tracker demo                 # quick run, a few seconds
  otel-tracker demo --full --seed 3 # the long version
  otel-tracker --root /tmp/runs demo --skip "Fine-tune"
"""


def _cmd_demo(args: argparse.Namespace) -> int:
    from .examples.imitation import FULL, QUICK, run_pipeline

    print(f"otel-tracker demo: imitation-learning pipeline ({'full' if args.full else 'quick'})")
    run = run_pipeline(
        FULL if args.full else QUICK,
        seed=args.seed,
        skip=args.skip,
        root=args.root,
        scenario=args.scenario,
        out=sys.stdout,
    )
    if run.manifest_path is None:
        print("tracking is disabled or the root is unwritable: no manifest was written")
    else:
        print(f"run {run.run_id} {run.record.status}")
        print(f"manifest: {run.manifest_path}")
    return 0


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
    demo.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP",
        help='skip an optional step: "Pretrain BC" or "Fine-tune" (repeatable)',
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-tracker`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="otel-tracker: %(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OtelTrackerError as exc:
        print(f"otel-tracker: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
