"""``prune``: remove old runs under the root, safely; a dry run unless ``--yes``.
With ``--artifacts``, the runs it selects keep their record and lose their artifacts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..values import format_bytes, parse_bytes
from .options import add_command, add_json_option


def add_commands(sub: Any) -> None:
    """Add ``prune`` to the main parser's subcommands."""
    prune = add_command(
        sub,
        "prune",
        "remove old runs (a dry run that lists them unless --yes); never a running run, "
        "a baseline's source run, or the newest completed run of a pipeline",
        "  otel-tracker prune                          # what --yes would remove\n"
        "  otel-tracker prune --keep-last 50 --older-than 30d --yes\n"
        "  otel-tracker prune --status failed --status aborted --keep-last 0 --yes\n"
        "  otel-tracker prune --artifacts --kind checkpoint --keep best --older-than 7d --yes",
    )
    prune.add_argument(
        "--keep-last",
        type=_whole,
        default=None,
        metavar="N",
        help="keep the newest N runs of each pipeline and scenario (default 20)",
    )
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        help="only runs that started longer ago than this (30d, 12h, 90m)",
    )
    prune.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="only runs with this status (repeatable: --status failed --status aborted)",
    )
    prune.add_argument("--name", help="only runs of this pipeline (wildcards allowed)")
    prune.add_argument("--scenario", help="only runs of this scenario (wildcards allowed)")
    prune.add_argument(
        "--include-baselines",
        action="store_true",
        help="a baseline's source runs may go too (the baseline keeps its figures)",
    )
    prune.add_argument(
        "--policy",
        metavar="POLICY",
        help="all of the above as one setting, as OTEL_TRACKER_RETENTION takes it: "
        "'keep-last=50,older-than=90d,status=failed|aborted'",
    )
    prune.add_argument(
        "--artifacts",
        action="store_true",
        help="remove the selected runs' registered artifacts (checkpoints, TensorBoard and "
        "W&B directories...) instead of the runs; each stays in the manifest, marked pruned",
    )
    prune.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="KIND",
        help="with --artifacts: only this kind (repeatable; wildcards: --kind 'check*')",
    )
    prune.add_argument(
        "--larger-than",
        metavar="SIZE",
        help="with --artifacts: only artifacts larger than this (500MB, 2GB, 1GiB)",
    )
    prune.add_argument(
        "--keep",
        action="append",
        default=[],
        choices=("best", "last"),
        help="with --artifacts: keep each run's best checkpoint (the one a score chose) "
        "or its last one (repeatable)",
    )
    prune.add_argument("--yes", action="store_true", help="remove them (default: only list)")
    prune.add_argument(
        "--log",
        metavar="FILE",
        help="append one line of what was removed to FILE (a run's retention uses "
        "<root>/retention.log)",
    )
    add_json_option(prune, "the plan, or what was removed, as JSON")
    prune.set_defaults(func=cmd_prune)


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def cmd_prune(args: argparse.Namespace) -> int:
    from ..analysis.retention import DEFAULT_KEEP_LAST, RetentionPolicy, carry_out, plan_prune
    from ..errors import OtelTrackerError
    from ..timeparse import parse_duration
    from .read import open_store

    try:
        if args.policy is not None:
            given = [args.keep_last, args.older_than, args.status, args.name, args.scenario]
            if any(v not in (None, []) for v in given) or args.include_baselines:
                raise ValueError("--policy holds the whole selection: give it alone")
            policy = RetentionPolicy.parse(args.policy)
        else:
            policy = RetentionPolicy(
                keep_last=DEFAULT_KEEP_LAST if args.keep_last is None else args.keep_last,
                older_than_s=parse_duration(args.older_than) if args.older_than else None,
                statuses=frozenset(args.status),
                name=args.name,
                scenario=args.scenario,
                include_baselines=args.include_baselines,
            )
        if not args.artifacts and (args.kind or args.larger_than or args.keep):
            raise ValueError("--kind, --larger-than and --keep select artifacts: add --artifacts")
    except ValueError as exc:
        raise OtelTrackerError(str(exc)) from None
    store = open_store(args)
    plan = plan_prune(store, policy)
    if args.artifacts:
        return prune_artifacts(store, plan, policy, args)
    for problem in plan.problems:
        print(f"otel-tracker: warning: {problem}", file=sys.stderr)
    if not args.yes:
        _show_plan(plan, policy, args.json)
        return 0
    progress = _Progress(len(plan.remove))
    removed, problems = carry_out(store, plan, progress)
    progress.done()
    for problem in problems:
        print(f"otel-tracker: warning: {problem}", file=sys.stderr)
    freed = sum(item.bytes for item in removed)
    if args.log and (removed or problems):
        _log_line(args.log, policy, removed, freed, problems)
    if args.json:
        print(json.dumps({"removed": [i.__dict__ for i in removed], "bytes": freed}, indent=2))
    else:
        print(f"removed {len(removed)} runs ({format_bytes(freed)}) under {store.root}")
    return 1 if problems else 0


def _log_line(path: str, policy: Any, removed: list[Any], freed: int, problems: list[str]) -> None:
    from datetime import datetime, timezone

    ids = ", ".join(item.run_id for item in removed[:20]) + (" ..." if len(removed) > 20 else "")
    line = (
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {policy.describe()}: "
        f"removed {len(removed)} runs ({format_bytes(freed)})"
        + (f": {ids}" if ids else "")
        + (f"; {len(problems)} left: {problems[0]}" if problems else "")
    )
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError as exc:
        print(f"otel-tracker: warning: cannot write {path}: {exc}", file=sys.stderr)


def _show_plan(plan: Any, policy: Any, as_json: bool) -> None:
    from ..timeparse import format_local

    if as_json:
        doc = {"remove": [i.__dict__ for i in plan.remove], "bytes": plan.bytes, "kept": plan.kept}
        print(json.dumps(doc, indent=2))
        return
    rows = [
        [i.run_id, i.name, i.status, format_local(i.started_at), format_bytes(i.bytes)]
        for i in plan.remove[:50]
    ]
    show_plan(["run id", "name", "status", "started", "size"], rows, plan, "runs")
    print(f"policy: {policy.describe()}")
    if plan.remove:
        print("nothing was removed: pass --yes to remove them")


def show_plan(headers: list[str], rows: list[list[str]], plan: Any, noun: str) -> None:
    """A plan's table (its first 50 rows) and its ``would remove N ...; kept ...`` line."""
    from ..console import emit, make_console, table

    if rows:
        console = make_console()
        emit(console, table(console, headers, rows))
        if len(plan.remove) > len(rows):
            print(f"... and {len(plan.remove) - len(rows)} more")
    kept = ", ".join(f"{n} {reason}" for reason, n in sorted(plan.kept.items()))
    print(
        f"would remove {len(plan.remove)} {noun} ({format_bytes(plan.bytes)}); "
        f"kept {sum(plan.kept.values())}{': ' + kept if kept else ''}"
    )


def prune_artifacts(store: Any, runs: Any, policy: Any, args: argparse.Namespace) -> int:
    from ..analysis.artifact_prune import carry_out_artifacts, plan_artifacts
    from ..errors import OtelTrackerError

    try:
        larger = parse_bytes(args.larger_than) if args.larger_than else None
    except ValueError as exc:
        raise OtelTrackerError(str(exc)) from None
    plan = plan_artifacts(
        store, runs, kinds=tuple(args.kind), larger_than=larger, keep=frozenset(args.keep)
    )
    for problem in plan.problems:
        print(f"otel-tracker: warning: {problem}", file=sys.stderr)
    if not args.yes:
        _show_artifacts(plan, policy, args.json)
        return 0
    removed, problems = carry_out_artifacts(store, plan, now=time.time())
    for problem in problems:
        print(f"otel-tracker: warning: {problem}", file=sys.stderr)
    freed = sum(item.bytes for item in removed)
    if args.json:
        print(json.dumps({"removed": [i.__dict__ for i in removed], "bytes": freed}, indent=2))
    else:
        runs_touched = len({item.run_id for item in removed})
        print(
            f"removed {len(removed)} artifacts ({format_bytes(freed)}) of {runs_touched} runs; "
            "their manifests keep them, marked pruned"
        )
    return 1 if problems else 0


def _show_artifacts(plan: Any, policy: Any, as_json: bool) -> None:
    from ..printable import printable

    if as_json:
        doc = {
            "remove": [i.__dict__ for i in plan.remove],
            "bytes": plan.bytes,
            "kept": dict(plan.kept),
        }
        print(json.dumps(doc, indent=2))
        return
    rows = [
        [i.run_id, printable(i.kind or "-"), printable(i.location), format_bytes(i.bytes)]
        for i in plan.remove[:50]
    ]
    show_plan(["run id", "kind", "path", "size"], rows, plan, "artifacts")
    print(f"runs: {policy.describe()}")
    if plan.remove:
        print("nothing was removed: pass --yes to remove them")


class _Progress:
    """One line per second on stderr while a long removal goes on."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.last = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int, freed: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            self.shown = True
            end = "\r" if sys.stderr.isatty() else "\n"
            print(f"removed {done}/{total} runs ({format_bytes(freed)})", end=end, file=sys.stderr)

    def done(self) -> None:
        if self.shown and sys.stderr.isatty():
            print(file=sys.stderr)
