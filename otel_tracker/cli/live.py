"""The commands about a run in progress: status, watch, and recover (a dead one).

Like the history commands they read manifests only and never import the OpenTelemetry
SDK; ``recover`` finalizes a dead run's manifest through the read side's recovery.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .options import add_command, add_json_option, add_run_argument, positive_float
from .read import open_store


def add_commands(sub: Any) -> None:
    """Add ``status``, ``watch`` and ``recover`` to the main parser's subcommands."""
    status = add_command(
        sub,
        "status",
        "show a run's progress and ETA now, from its files",
        "  otel-tracker status latest\n  otel-tracker status 20261123T2137 --json",
    )
    add_run_argument(status, default="latest", default_help="latest")
    add_json_option(status)
    status.set_defaults(func=cmd_status)

    watch = add_command(
        sub,
        "watch",
        "follow a run's progress until it ends (exit 0 if it completed, 1 otherwise)",
        "  otel-tracker watch            # the latest running run\n  otel-tracker watch 20261123T2137 --interval 5",
    )
    add_run_argument(watch, default=None, default_help="the latest running run")
    watch.add_argument(
        "--interval", type=positive_float, default=2.0, help="seconds between reads (default 2)"
    )
    watch.set_defaults(func=cmd_watch)

    recover = add_command(
        sub,
        "recover",
        "finalize a dead run's manifest as aborted, keeping its partial data",
        "  otel-tracker recover 20261123T2137",
    )
    add_run_argument(recover)
    recover.set_defaults(func=cmd_recover)


def cmd_status(args: argparse.Namespace) -> int:
    from ..history.progress_view import progress_status, status_lines

    view = open_store(args).get(args.run)
    if args.json:
        print(json.dumps(progress_status(view), indent=2))
    else:
        print("\n".join(status_lines(view)))
    return 0


def _latest_live(store: Any) -> Any:
    from ..errors import RunNotFoundError
    from ..history.store import Filters

    for view in store.iter_runs(Filters(statuses=frozenset({"running", "stuck"}))):
        return view
    raise RunNotFoundError(f"no running run under {store.root}")


def cmd_watch(args: argparse.Namespace) -> int:
    from ..history.progress_view import status_lines

    store = open_store(args)
    path = store.resolve(args.run) if args.run else _latest_live(store).path
    tty = sys.stdout.isatty()
    previous: list[str] = []
    live = None
    if tty:
        from rich.live import Live

        live = Live("", refresh_per_second=4, transient=False)
        live.start()
    try:
        while True:
            view = store.load(path)
            lines = status_lines(view)
            if live is not None:
                from rich.text import Text

                live.update(Text("\n".join(lines)))  # Text: a name is never rich markup
            elif lines[1:] != previous[1:]:
                print(lines[1] if previous else "\n".join(lines), flush=True)
                for extra in lines[2:]:
                    print(extra, flush=True)
            previous = lines
            if view.status not in ("running", "stuck"):
                return 0 if view.status == "completed" else 1
            time.sleep(args.interval)
    finally:
        if live is not None:
            live.stop()


def cmd_recover(args: argparse.Namespace) -> int:
    from ..analysis.summary_files import write_summary_files
    from ..errors import OtelTrackerError
    from ..printable import printable

    store = open_store(args)
    view = store.recover(args.run)
    try:
        write_summary_files(view.path, store)
    except (OSError, OtelTrackerError) as exc:
        problem = printable(f"{view.path}: summary files not written: {exc}")
        print(f"otel-tracker: warning: {problem}", file=sys.stderr)
    reason = printable(view.doc["recovered"]["reason"])
    print(f"recovered {view.run_id} as {view.doc['status']}: {reason}")
    return 0
