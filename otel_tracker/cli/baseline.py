"""``baseline`` and ``perf-test``: the CLI over :mod:`otel_tracker.analysis.baseline`
and :mod:`otel_tracker.perftest`. Baseline commands are read-side (no OTel SDK)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (a tolerance)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.25 = 25%), got {text}")
    return value


def add_commands(sub: Any, command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add ``baseline`` and ``perf-test`` to the main parser's subcommands."""
    baseline = command(
        "baseline",
        "create, update and show baselines: the expected figures of a pipeline",
        "  otel-tracker baseline create --from 20261123T2137 --from 20261124T0102\n"
        "  otel-tracker baseline update imitation-pipeline --from latest\n"
        "  otel-tracker baseline show imitation-pipeline\n"
        "  otel-tracker baseline list",
    )
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    runs_help = "a completed run (id, unique prefix or 'latest'); repeat for several"
    create = actions.add_parser("create", help="make a baseline from completed runs")
    create.add_argument(
        "--from", dest="runs", action="append", required=True, metavar="RUN", help=runs_help
    )
    create.add_argument("--output", "-o", help="write here instead of <root>/baselines/<key>.json")
    create.add_argument("--force", action="store_true", help="replace an existing baseline")
    create.set_defaults(func=cmd_baseline_create)
    update = actions.add_parser("update", help="add runs to a baseline (a new revision)")
    update.add_argument("baseline", help="baseline key or file")
    update.add_argument(
        "--from", dest="runs", action="append", required=True, metavar="RUN", help=runs_help
    )
    update.add_argument(
        "--replace", action="store_true", help="use only these runs, forgetting the earlier ones"
    )
    update.set_defaults(func=cmd_baseline_update)
    show = actions.add_parser("show", help="print a baseline")
    show.add_argument("baseline", help="baseline key or file")
    show.add_argument("--json", action="store_true", help="the file as it is")
    show.set_defaults(func=cmd_baseline_show)
    listing = actions.add_parser("list", help="list the baselines under the root")
    listing.set_defaults(func=cmd_baseline_list)

    perf = command(
        "perf-test",
        "run performance smoke tests and compare them with their baselines "
        "(exit 1 on a regression or a critical threshold)",
        "  otel-tracker perf-test --scenario perf/scenarios.toml\n"
        "  otel-tracker perf-test --scenario perf/scenarios.toml --baseline perf/baseline.json\n"
        "  otel-tracker perf-test --scenario perf/scenarios.toml --save-baseline\n"
        "  otel-tracker perf-test --default   # the shipped scenarios of the reference pipeline",
    )
    source = perf.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", metavar="FILE", help="scenario file (.toml, .yaml, .yml)")
    source.add_argument(
        "--default", action="store_true", help="the shipped scenarios of the reference pipeline"
    )
    perf.add_argument(
        "--baseline",
        metavar="FILE|DIR",
        help="a perf_test_results.json, a baseline file or a directory of them "
        "(default: <root>/baselines)",
    )
    perf.add_argument(
        "--tolerance",
        type=fraction,
        default=None,
        help="a metric this far worse than its baseline is a regression (default: the file's, or 0.25)",
    )
    perf.add_argument(
        "--output", metavar="DIR", help="results directory (default: <root>/perf-tests/<time>)"
    )
    perf.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only these scenarios"
    )
    perf.add_argument(
        "--save-baseline",
        action="store_true",
        help="store this invocation's figures as the scenarios' baselines under the root",
    )
    perf.set_defaults(func=cmd_perf_test)


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


def cmd_perf_test(args: argparse.Namespace) -> int:
    from ..perftest.cli import run_perf_test

    return run_perf_test(args)
