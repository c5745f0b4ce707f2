"""``compact``: pack finished runs' telemetry (roll-ups past a window, then gzip)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..values import format_bytes
from .options import add_command, add_json_option


def add_commands(sub: Any) -> None:
    """Add ``compact`` to the main parser's subcommands."""
    compact = add_command(
        sub,
        "compact",
        "pack finished runs' telemetry: samples older than a recent window become "
        "per-minute min/mean/max/last, and the file is gzipped (a dry run unless --yes); "
        "every reader reads both forms",
        "  otel-tracker compact                        # which runs --yes would pack\n"
        "  otel-tracker compact --yes                  # pack every finished run\n"
        "  otel-tracker compact latest --window 0 --yes   # gzip only, every sample kept",
    )
    compact.add_argument("runs", nargs="*", metavar="RUN", help="run ids (default: every run)")
    compact.add_argument(
        "--window",
        default=None,
        metavar="AGE",
        help="keep every sample of this last part of each run (default: the run's "
        "OTEL_TRACKER_TELEMETRY_WINDOW setting, 1h; 0 keeps all)",
    )
    compact.add_argument(
        "--rollup",
        default=None,
        metavar="AGE",
        help="one roll-up per this much time before the window (default 60s)",
    )
    compact.add_argument("--yes", action="store_true", help="pack them (default: only list)")
    compact.add_argument("--quiet", action="store_true", help="print nothing but problems")
    add_json_option(compact, "what was (or would be) packed, as JSON")
    compact.set_defaults(func=cmd_compact)


def cmd_compact(args: argparse.Namespace) -> int:
    from ..analysis.compaction import compact_run, packable
    from ..config import TrackerConfig
    from ..contract.telemetry_form import telemetry_bytes
    from ..errors import OtelTrackerError
    from ..timeparse import parse_duration
    from .read import open_store

    defaults = TrackerConfig.resolve(root=args.root)
    window = parse_duration(args.window) if args.window else defaults.telemetry_window
    rollup = parse_duration(args.rollup) if args.rollup else defaults.telemetry_rollup
    if rollup < 1:
        raise OtelTrackerError(f"--rollup must be at least 1s, got {args.rollup!r}")
    store = open_store(args)
    runs = [store.resolve(ref).name for ref in args.runs] if args.runs else None
    chosen, skipped = packable(store, runs)
    for line in skipped:
        if runs is not None or not args.quiet:
            print(f"otel-tracker: {line}", file=sys.stderr)
    # a run named but left (live, or unreadable) is a failure; one packed already is not
    refused = runs is not None and any("no live telemetry" not in line for line in skipped)
    if not args.yes:
        sizes = {name: telemetry_bytes(store.root / name) for name in chosen}
        if args.json:
            print(json.dumps({"pack": sizes, "bytes": sum(sizes.values())}, indent=2))
        elif not args.quiet:
            for name, size in sizes.items():
                print(f"{name}  {format_bytes(size)}")
            print(
                f"would pack the telemetry of {len(chosen)} runs "
                f"({format_bytes(sum(sizes.values()))}); nothing was changed: pass --yes"
            )
        return 1 if refused else 0
    done = []
    for name in chosen:
        try:
            done.append(compact_run(store, name, window, rollup))
        except OSError as exc:
            print(f"otel-tracker: {name}: not packed: {exc}", file=sys.stderr)
    before = sum(i.bytes_before for i in done if i.bytes_after is not None)
    after = sum(i.bytes_after or 0 for i in done)
    packed = [i for i in done if i.bytes_after is not None]
    if args.json:
        print(
            json.dumps({"packed": [i.__dict__ for i in packed], "before": before, "after": after})
        )
    elif not args.quiet:
        print(
            f"packed the telemetry of {len(packed)} runs: "
            f"{format_bytes(before)} -> {format_bytes(after)}"
        )
    return 1 if refused or len(packed) < len(chosen) else 0
