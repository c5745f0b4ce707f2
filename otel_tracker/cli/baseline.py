"""``baseline create / update / show / list``: the CLI over
:mod:`otel_tracker.analysis.baseline`. Read-side: no OTel SDK."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from .options import add_command, add_json_option

RUNS_HELP = "a completed run (id, unique prefix or 'latest'); repeat for several"
BASELINE_HELP = "baseline key or file"


def add_commands(sub: Any) -> None:
    """Add ``baseline`` and its actions to the main parser's subcommands."""
    baseline = add_command(
        sub,
        "baseline",
        "create, update and show baselines: the expected figures of a pipeline",
        "  otel-tracker baseline create --from 20261123T2137 --from 20261124T0102\n"
        "  otel-tracker baseline update imitation-pipeline --from latest\n"
        "  otel-tracker baseline show imitation-pipeline\n"
        "  otel-tracker baseline list",
    )
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a baseline from completed runs")
    _add_runs(create)
    create.add_argument("--output", "-o", help="write here instead of <root>/baselines/<key>.json")
    create.add_argument("--force", action="store_true", help="replace an existing baseline")
    create.set_defaults(func=cmd_baseline_create)
    update = actions.add_parser("update", help="add runs to a baseline (a new revision)")
    update.add_argument("baseline", help=BASELINE_HELP)
    _add_runs(update)
    update.add_argument(
        "--replace", action="store_true", help="use only these runs, forgetting the earlier ones"
    )
    update.set_defaults(func=cmd_baseline_update)
    show = actions.add_parser("show", help="print a baseline")
    show.add_argument("baseline", help=BASELINE_HELP)
    add_json_option(show, "the file as it is")
    show.set_defaults(func=cmd_baseline_show)
    listing = actions.add_parser("list", help="list the baselines under the root")
    listing.set_defaults(func=cmd_baseline_list)


def _add_runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="runs", action="append", required=True, metavar="RUN", help=RUNS_HELP
    )


def _views(args: argparse.Namespace) -> list[Any]:
    from .read import open_store

    store = open_store(args)
    views = [store.get(ref) for ref in args.runs]
    ids = [v.run_id for v in views]
    if len(set(ids)) != len(ids):
        raise OtelTrackerError("the same run was given twice")
    return views


def _now() -> str:
    import time

    from ..clock import iso_utc

    return iso_utc(time.time_ns())


def _baselines(args: argparse.Namespace) -> Any:
    from ..analysis.baseline import BaselineStore
    from .read import open_store

    return BaselineStore.under(open_store(args).root)


def cmd_baseline_create(args: argparse.Namespace) -> int:
    from ..analysis.baseline import create_baseline

    views = _views(args)
    doc = create_baseline([v.doc for v in views], _now())
    store = _baselines(args)
    path = Path(args.output) if args.output else store.path(doc["key"])
    if path.exists() and not args.force:
        raise OtelTrackerError(
            f"baseline {path} exists; add runs with 'otel-tracker baseline update "
            f"{doc['key']} --from RUN' or replace it with --force"
        )
    store.save(doc, path)
    print(f"created baseline {doc['key']} revision 1 from {len(views)} run(s): {path}")
    return 0


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from ..analysis.baseline import update_baseline

    store = _baselines(args)
    path = store.resolve(args.baseline)
    old = store.load(args.baseline)
    doc = update_baseline(old, [v.doc for v in _views(args)], _now(), replace=args.replace)
    store.save(doc, path)
    print(
        f"updated baseline {doc['key']} to revision {doc['revision']} "
        f"({len(doc['source_runs'])} runs): {path}"
    )
    return 0


def cmd_baseline_show(args: argparse.Namespace) -> int:
    from ..analysis.baseline import config_text
    from ..analysis.findings import format_number
    from ..console import emit, key_value_table, make_console, table
    from ..printable import json_text
    from ..timeparse import format_duration

    doc = _baselines(args).load(args.baseline)
    if args.json:
        print(json_text(doc, indent=2))
        return 0
    console = make_console()
    head = [
        ("baseline", doc.get("key", "?")),
        (
            "pipeline",
            str(doc["pipeline"]) + (f" / {doc['scenario']}" if doc.get("scenario") else ""),
        ),
        *([("configuration", config_text(doc))] if doc.get("history_key") else []),
        ("revision", f"{doc.get('revision')} (updated {doc.get('updated_at')})"),
        ("runs", ", ".join(r.get("run_id") or "?" for r in doc["source_runs"])),
    ]
    rows = []
    for name, s in doc["steps"].items():
        d, t = s.get("duration_s") or {}, s.get("throughput")
        rows.append(
            [
                name,
                str(s.get("runs")),
                format_duration(d.get("median")),
                f"{format_duration(d.get('min'))} - {format_duration(d.get('max'))}",
                f"{format_number(t['median'])} {t['unit']}" if t else "-",
            ]
        )
    for name, s in (doc.get("scores") or {}).items():
        head.append(
            (f"score {name}", f"median {format_number(s['median'])} ({s['direction']} is better)")
        )
    headers = ["step", "runs", "median duration", "range", "median throughput"]
    emit(console, key_value_table(console, head), "", table(console, headers, rows))
    return 0


def cmd_baseline_list(args: argparse.Namespace) -> int:
    from ..console import emit, make_console, table

    store = _baselines(args)
    rows = []
    for key, doc in store.all():
        if isinstance(doc, OtelTrackerError):
            rows.append([key, "-", "-", "-", f"unreadable: {doc}"])
            continue
        rows.append(
            [
                key,
                str(doc["pipeline"]) + (f" / {doc['scenario']}" if doc.get("scenario") else ""),
                str(doc.get("revision")),
                str(len(doc["source_runs"])),
                str(doc.get("updated_at")),
            ]
        )
    if not rows:
        print(f"no baselines under {store.directory}")
        return 0
    console = make_console()
    emit(console, table(console, ["key", "pipeline", "revision", "runs", "updated"], rows))
    return 0
