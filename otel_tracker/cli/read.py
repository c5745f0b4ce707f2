"""The history commands: list, show, summary, export (``live.py``: status, watch, recover).

They read manifests through :class:`~otel_tracker.history.store.RunStore` and never import
the OpenTelemetry SDK or an exporter, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from ..values import format_bytes
from .options import add_analysis_options, add_command, add_json_option, add_run_argument


def add_commands(sub: Any) -> None:
    """Add ``list``, ``show``, ``summary`` and ``export`` to the main parser's subcommands."""
    _add_list(sub)
    show = add_command(
        sub,
        "show",
        "show one run in full",
        "  otel-tracker show latest\n  otel-tracker show 20261123T2137",
    )
    add_run_argument(show)
    add_json_option(show, "the manifest plus the inferred status")
    add_analysis_options(show)
    show.set_defaults(func=cmd_show)

    summary = add_command(
        sub,
        "summary",
        "print a run's report: key figures, anomalies and recommendations",
        "  otel-tracker summary latest\n"
        "  otel-tracker summary latest --format json --tolerance 0.1\n"
        "  otel-tracker summary 20261123T2137 --baseline baselines/nightly.json",
    )
    add_run_argument(summary)
    summary.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    add_analysis_options(summary)
    summary.set_defaults(func=cmd_summary)

    export = add_command(
        sub,
        "export",
        "write a run's report to a file",
        "  otel-tracker export latest --format markdown --output run.md\n"
        "  otel-tracker export latest --format json --output -   # to standard output\n"
        "  otel-tracker export latest --series --format csv --output loss.csv",
    )
    add_run_argument(export)
    export.add_argument(
        "--format",
        choices=("markdown", "json", "csv", "jsonl"),
        default=None,
        help="markdown (the default) or json for the report; with --series csv (the "
        "default) or jsonl, streamed, or json (grouped by key, held in memory)",
    )
    export.add_argument(
        "--series",
        action="store_true",
        help="the run.log() series, every point (key, stage, step, value, time), not the report",
    )
    export.add_argument(
        "--output", "-o", required=True, help="file to write ('-': standard output)"
    )
    add_analysis_options(export)
    export.set_defaults(func=cmd_export)


def _add_list(sub: Any) -> None:
    ls = add_command(
        sub,
        "list",
        "list runs, newest first, with their crash-aware status",
        "  otel-tracker list --status failed,aborted --since 2d\n"
        "  otel-tracker list --name 'imitation*' --json\n"
        "  otel-tracker list --columns acc,loss.best,params.lr --sort=-acc "
        "--where 'params.lr < 0.01 and acc > 0.9'",
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
    ls.add_argument(
        "--columns",
        help="extra columns: a metric's last value (acc) or figure (loss.best, .min, .max), "
        "a param (params.lr), name, status, duration...",
    )
    ls.add_argument(
        "--sort",
        metavar="[-]FIELD",
        help="order by a field (as --columns; --sort=-acc: highest first; runs without it last)",
    )
    ls.add_argument(
        "--where",
        metavar="EXPR",
        help="keep runs for which EXPR holds: fields compared with numbers or quoted "
        "strings, and/or/not, parentheses ('params.lr < 0.01 and acc > 0.9')",
    )
    ls.add_argument(
        "--size",
        action="store_true",
        help="bytes on disk per run (its directory; and the artifacts it recorded outside "
        "it), the total and the largest (walks each listed run's directory)",
    )
    add_json_option(ls)
    ls.set_defaults(func=cmd_list)


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
    from ..history.disk_use import disk_use
    from ..history.query import field
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
    columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()]
    store = open_store(args)
    if args.where or args.sort:
        scanned = store.list(filters, limit=None)
        views = _queried(scanned, args.where, args.sort, columns)
        views = views if args.all else views[: args.limit]
    else:
        views = store.list(filters, limit=None if args.all else args.limit)
        _warn_unknown_fields(views, columns)
    _report_problems(store)
    sizes = [disk_use(v.path, v.doc) for v in views] if args.size else None
    if args.json:
        rows = [v.summary() for v in views]
        if columns:
            for row, v in zip(rows, views, strict=True):
                row["fields"] = {c: field(v.doc, v.status, c) for c in columns}
        for row, size in zip(rows, sizes or [], strict=False):
            row["size_bytes"], row["artifacts_outside_bytes"] = size
        print(json.dumps(rows, indent=2))
        return 0
    if not views:
        print(f"no runs under {store.root}" + (" match" if filters != Filters() else ""))
        return 0
    from ..analysis.job_report import job_of, list_cell

    # a column for a distributed job's size, only where one is listed
    jobs = any(job_of(v.doc) for v in views)
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
                *([list_cell(job_of(v.doc))] if jobs else []),
                *(_cell(field(v.doc, v.status, c)) for c in columns),
            ]
        )
    console = make_console()
    headers = ["run id", "name", "status", "started", "duration", "steps", "last completed step"]
    headers += ["ranks"] if jobs else []
    headers += columns
    if sizes is not None:
        headers += ["size", "artifacts outside"]
        for row, (own, outside) in zip(rows, sizes, strict=True):
            row += [format_bytes(own), format_bytes(outside) if outside else "-"]
    emit(console, table(console, headers, rows, status_column=2))
    if sizes is not None:
        print(_size_footer(views, sizes))
    return 0


def _size_footer(views: list[Any], sizes: list[tuple[int, int]]) -> str:
    total = sum(own for own, _ in sizes)
    outside = sum(out for _, out in sizes)
    largest = max(range(len(views)), key=lambda i: sizes[i][0])
    line = f"total {format_bytes(total)} in {len(views)} run{'s' if len(views) != 1 else ''}"
    if outside:
        line += f" (and {format_bytes(outside)} of artifacts outside the root)"
    return line + f"; largest: {views[largest].run_id} ({format_bytes(sizes[largest][0])})"


def _export_series(args: argparse.Namespace) -> int:
    import contextlib

    from ..history.series_file import iter_points
    from ..printable import printable

    if args.format == "markdown":
        raise OtelTrackerError("--series is csv or json")
    store = open_store(args)
    view = store.get(args.run)
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.output == "-":
            out: Any = sys.stdout
        else:
            try:  # csv and jsonl are streamed: a long series is never held whole
                out = stack.enter_context(open(args.output, "w", encoding="utf-8"))
            except OSError as exc:
                raise OtelTrackerError(
                    f"cannot write {args.output}: {exc.strerror or exc}"
                ) from None
        points = iter_points(view.path, problems)
        count = _write_series(out, args.format or "csv", view.run_id, points, printable)
    for problem in problems:
        print(f"otel-tracker: warning: {printable(problem)}", file=sys.stderr)
    if args.output != "-":
        print(f"wrote {count:,} points of {view.run_id} to {args.output}")
    return 0


def _write_series(out: Any, form: str, run_id: str, points: Any, printable: Any) -> int:
    import csv

    count = 0
    if form == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["key", "stage", "step", "value", "time"])
        for key, stage, step, value, at in points:
            # keys are text from files: nothing a terminal obeys (as in every reader)
            row = [printable(key), printable(stage or ""), step, "" if value is None else value]
            writer.writerow([*row, at or ""])
            count += 1
        return count
    if form == "jsonl":  # streamed like CSV: one point per line
        for key, stage, step, value, at in points:
            point = {"key": key, "stage": stage, "step": step, "value": value, "time": at}
            out.write(json.dumps(point) + "\n")  # ASCII: any key reaches a terminal safely
            count += 1
        return count
    # grouped by key, the lists are built whole before writing: for a series of
    # millions of points, csv and jsonl stream instead
    series: dict[str, dict[str, list[Any]]] = {}
    for key, stage, step, value, at in points:
        columns = series.setdefault(key, {"step": [], "value": [], "time": [], "stage": []})
        for name, item in (("step", step), ("value", value), ("time", at), ("stage", stage)):
            columns[name].append(item)
        count += 1
    json.dump({"run_id": run_id, "series": series}, out, indent=1)
    out.write("\n")
    return count


def _warn_unknown_fields(views: list[Any], names: list[str]) -> None:
    """One warning per field that none of the runs has (most likely a typo)."""
    from ..history.query import RUN_FIELDS, unknown_fields
    from ..printable import printable

    if not views:
        return
    for name in unknown_fields(list(dict.fromkeys(names)), [(v.doc, v.status) for v in views]):
        print(
            f"otel-tracker: warning: no run has the field {printable(name)!r} (fields: "
            f"params.NAME, a series KEY or KEY.best|min|max|count, {', '.join(RUN_FIELDS)})",
            file=sys.stderr,
        )


def _queried(
    views: list[Any], where: str | None, sort: str | None, columns: list[str]
) -> list[Any]:
    """``--where`` and ``--sort`` over every matching run (they need all of them);
    a field that none of them has is a warning (most likely a typo), not silence."""
    from ..history.query import parse_where, sort_key

    keep = parse_where(where) if where else None
    _warn_unknown_fields(
        views, [*(keep.fields if keep else []), *([sort.lstrip("+-")] if sort else []), *columns]
    )
    if keep is not None:
        views = [v for v in views if keep(v.doc, v.status)]
    if sort:
        name = sort.lstrip("+-")
        keyed = [(sort_key(v.doc, v.status, name), v) for v in views]
        present = [(k, v) for k, v in keyed if k[0] < 2]
        present.sort(key=lambda kv: kv[0], reverse=sort.startswith("-"))
        views = [v for _, v in present] + [v for k, v in keyed if k[0] == 2]
    return views


def _cell(value: Any) -> str:
    from ..analysis.findings import format_number
    from ..values import is_real

    if value is None:
        return "-"
    if is_real(value):
        return format_number(value)
    return value if isinstance(value, str) else json.dumps(value)[:80]


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

    if args.series:
        return _export_series(args)
    if args.format in ("csv", "jsonl"):
        raise OtelTrackerError(
            f"--format {args.format} is for --series; a report is markdown or json"
        )
    args.format = args.format or "markdown"
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
