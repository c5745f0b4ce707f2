"""The read-only commands: list, show, summary, export, status, watch, recover.

They read manifests through :class:`~otel_tracker.history.store.RunStore` and never import
the OpenTelemetry SDK or an exporter, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError


def open_store(args: argparse.Namespace) -> Any:
    """The run store under ``--root`` (the environment's or the default root without it)."""
    from ..history.store import RunStore

    return RunStore.open(args.root)


def _report_problems(store: Any) -> None:
    from ..printable import printable

    for problem in store.problems:
        print(f"otel-tracker: warning: {printable(problem)}", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from ..console import emit, make_console, table
    from ..history.store import Filters
    from ..timeparse import format_duration, format_local, parse_when

    statuses = frozenset(s.strip() for value in args.status for s in value.split(",") if s.strip())
    filters = Filters(
        statuses=statuses,
        since=parse_when(args.since).timestamp() if args.since else None,
        until=parse_when(args.until).timestamp() if args.until else None,
        name=args.name,
        scenario=args.scenario,
        outdated=True if args.outdated else None,
    )
    store = open_store(args)
    views = store.list(filters, limit=None if args.all else args.limit)
    _report_problems(store)
    if args.json:
        print(json.dumps([v.summary() for v in views], indent=2))
        return 0
    if not views:
        print(f"no runs under {store.root}" + (" match" if filters != Filters() else ""))
        return 0
    rows = []
    for v in views:
        row = v.summary()
        duration = row["duration_s"] if row["duration_s"] is not None else row["elapsed_s"]
        rows.append(
            [
                row["run_id"],
                row["name"] + (f" / {row['scenario']}" if row["scenario"] else ""),
                row["status"] + (" (outdated)" if row["outdated"] else ""),
                format_local(row["started_at"]),
                format_duration(duration),
                f"{row['steps_completed']}/{row['steps_enabled']}",
                row["last_completed_step"] or "-",
            ]
        )
    console = make_console()
    headers = ["run id", "name", "status", "started", "duration", "steps", "last completed step"]
    emit(console, table(console, headers, rows, status_column=2))
    return 0


def _report(args: argparse.Namespace) -> dict[str, Any]:
    """The run's report with its analysis (baseline, history, recommendations)."""
    from ..analysis.recommend import analyze
    from ..analysis.report import build_report
    from ..analysis.rules import Thresholds

    store = open_store(args)
    view = store.get(args.run)
    thresholds = Thresholds(tolerance=args.tolerance) if args.tolerance else Thresholds()
    analysis = analyze(
        view.doc, root=store.root, store=store, baseline=args.baseline, thresholds=thresholds
    )
    return build_report(view, analysis)


def _print_report(args: argparse.Namespace, full: bool) -> int:
    from ..analysis.render import report_renderables
    from ..console import emit, make_console

    report = _report(args)
    console = make_console()
    emit(console, *report_renderables(console, report, full))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    if args.json:
        from ..printable import json_text

        view = open_store(args).get(args.run)
        doc = {**view.doc, "inferred_status": view.status, "status_reason": view.inference.reason}
        print(json_text(doc, indent=2))
        return 0
    return _print_report(args, full=True)


def cmd_summary(args: argparse.Namespace) -> int:
    from ..analysis.report import to_json, to_markdown

    if args.format == "json":
        sys.stdout.write(to_json(_report(args)))
        return 0
    if args.format == "markdown":
        sys.stdout.write(to_markdown(_report(args)))
        return 0
    return _print_report(args, full=False)


def cmd_export(args: argparse.Namespace) -> int:
    from ..analysis.report import to_json, to_markdown

    report = _report(args)
    text = to_markdown(report) if args.format == "markdown" else to_json(report)
    if args.output == "-":  # the report itself on stdout, nothing else
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OtelTrackerError(f"cannot write {output}: {exc.strerror or exc}") from None
    print(f"wrote {args.format} report of {report['run_id']} to {output}")
    return 0


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
