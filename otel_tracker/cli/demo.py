"""``demo``: run the tracked reference imitation-learning pipeline."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_tracker_settings, tracker_settings

EPILOG_DEMO = """example:
  otel-tracker demo                 # quick run, a few seconds
  otel-tracker demo --full --seed 3 # the long version
  otel-tracker --root /tmp/runs demo --skip "Fine-tune"
"""


def add_commands(sub: Any) -> None:
    """Add ``demo`` to the main parser's subcommands."""
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
    add_tracker_settings(demo)
    demo.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP",
        help='skip an optional step: "Pretrain BC" or "Fine-tune" (repeatable)',
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..examples.imitation import FULL, QUICK, run_pipeline

    print(f"otel-tracker demo: imitation-learning pipeline ({'full' if args.full else 'quick'})")
    run = run_pipeline(
        FULL if args.full else QUICK,
        seed=args.seed,
        skip=args.skip,
        root=args.root,
        scenario=args.scenario,
        out=True,
        **tracker_settings(args),
    )
    if run.manifest_path is None:
        print("tracking is disabled or the root is unwritable: no manifest was written")
    else:
        print(f"run {run.run_id} {run.record.status}")
        print(f"manifest: {run.manifest_path}")
    return 0
