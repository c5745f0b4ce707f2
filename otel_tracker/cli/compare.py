"""``compare``: runs side by side (params that differ, series, steps, resources)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .options import RUN_HELP, add_command


def add_commands(sub: Any) -> None:
    """Add ``compare`` to the main parser's subcommands."""
    compare = add_command(
        sub,
        "compare",
        "compare runs side by side: params that differ, metric series, step durations, resources",
        "  otel-tracker compare 20261201T0930 20261202T0930\n"
        "  otel-tracker compare latest 20261201T0930 20261130T2200 --format markdown",
    )
    compare.add_argument("runs", nargs="+", metavar="run", help=f"two or more: {RUN_HELP}")
    compare.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    compare.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import compare, rows
    from ..errors import OtelTrackerError
    from ..printable import printable
    from .read import open_store

    if len(args.runs) < 2:
        raise OtelTrackerError("compare needs two runs or more")
    store = open_store(args)
    views = [store.get(ref) for ref in args.runs]
    comparison = compare(views)
    if args.format == "json":
        print(json.dumps(comparison, indent=2))
        return 0
    headers = ["", *(v.run_id for v in views)]
    table_rows = [[label, *cells] for label, cells in rows(comparison)]
    if args.format == "markdown":

        def cell(text: str) -> str:
            return printable(text).replace("|", "\\|")

        print("| " + " | ".join(cell(h) for h in headers) + " |")
        print("|" + "---|" * len(headers))
        for row in table_rows:
            print("| " + " | ".join(cell(c) for c in row) + " |")
        return 0
    from ..console import emit, make_console, table

    console = make_console()
    emit(console, table(console, headers, table_rows))
    same = comparison["params_same"]
    if same:
        shown = ", ".join(f"{k}={json.dumps(v)[:40]}" for k, v in list(same.items())[:20])
        print(f"same params: {printable(shown)}" + (" ..." if len(same) > 20 else ""))
    return 0
