"""``gather``: join the shares of a distributed job that hosts recorded under roots of
their own (no shared filesystem) into one run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .options import add_command, add_json_option


def add_commands(sub: Any) -> None:
    """Add ``gather`` to the main parser's subcommands."""
    gather = add_command(
        sub,
        "gather",
        "copy the ranks and host telemetry that other hosts recorded of a distributed "
        "job (each under its own root: no shared filesystem) into this root's run of it; "
        "then list, show and status show the whole job",
        "  otel-tracker gather latest --from /mnt/node-b/runs --from /mnt/node-c/runs\n"
        "  otel-tracker gather 20261203T120000.000Z-train-4f1c2a --from ./node-b-run --dry-run",
    )
    gather.add_argument(
        "run", metavar="RUN", help="the job's run under --root (id, prefix or latest)"
    )
    gather.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="DIR",
        help="another host's runs root, or its run directory of the job (repeat for each host)",
    )
    gather.add_argument("--dry-run", action="store_true", help="list what would be copied")
    add_json_option(gather, "what was (or would be) copied, as JSON")
    gather.set_defaults(func=cmd_gather)


def cmd_gather(args: argparse.Namespace) -> int:
    from ..analysis.job_gather import gather
    from .read import open_store

    store = open_store(args)
    destination = store.resolve(args.run)
    result = gather(destination, [Path(s) for s in args.sources], dry_run=args.dry_run)
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(result.destination),
                    "sources": [str(s) for s in result.sources],
                    "copied": result.copied,
                    "skipped": result.skipped,
                    "dry_run": args.dry_run,
                },
                indent=2,
            )
        )
        return 0
    verb = "would copy" if args.dry_run else "copied"
    print(
        f"{verb} {len(result.copied)} file(s) from {len(result.sources)} share(s) into "
        f"{result.destination} ({result.skipped} already there)"
    )
    return 0
