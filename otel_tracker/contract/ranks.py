"""A distributed job's ranks, merged into one view of the job.

Rank 0 writes the run's ``manifest.json``; every other rank writes
``parts/rank-<rank>.json``, a part file with a ``job`` section (see
:mod:`otel_tracker.contract.parts`). Readers merge them into ``doc["job"]``:

* ``ranks``: one row per rank (host, status, the step it is at or ended in,
  its steps' durations, exit, error);
* ``counts`` by status, ``hosts``, and ranks that never reported (``missing``);
* the job's status: ``completed`` only when every rank completed; the first rank
  that failed or was killed makes the job ``failed``/``aborted``
  (``first_failure``), and the ranks that ended after it are listed as having
  died with it (``died_with``): the root cause is the first failure, not the
  timeouts that followed it.

Nothing here imports the OTel SDK; the writer never reads these files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..timeparse import parse_timestamp
from .jsonfile import FileProblem, read_json

RANK_PREFIX = "rank-"
MAX_RANK_PART_BYTES = 4 * 1024 * 1024
MAX_RANKS = 65536
FAILED = ("failed", "aborted")


def rank_part_name(rank: int) -> str:
    return f"{RANK_PREFIX}{rank:05d}"


def is_rank_part_file(name: str) -> bool:
    return name.startswith(RANK_PREFIX) and name.endswith(".json")


def read_rank_parts(parts_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rank parts under ``parts_dir`` that parse, and one problem per other one."""
    try:
        entries = os.scandir(parts_dir)
    except OSError:
        return [], []
    with entries:
        paths = sorted(Path(e.path) for e in entries if is_rank_part_file(e.name) and e.is_file())
    parts: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in paths[:MAX_RANKS]:
        try:
            doc = read_json(path, MAX_RANK_PART_BYTES)
        except FileProblem as exc:
            problems.append(f"{exc}; rank not merged")
            continue
        job = doc.get("job") if isinstance(doc, dict) else None
        if not isinstance(job, dict) or not isinstance(job.get("rank"), int):
            problems.append(f"{path}: not a rank's part (no job section with a rank)")
            continue
        parts.append(doc)
    return parts, problems


def _current_step(doc: dict[str, Any]) -> dict[str, Any] | None:
    steps = [s for s in doc.get("steps") or [] if isinstance(s, dict)]
    running = [s for s in steps if s.get("status") == "running"]
    if running:
        return running[-1]
    failed = [s for s in steps if s.get("status") == "failed"]
    if failed:
        return failed[-1]
    started = [s for s in steps if s.get("started_at")]
    return started[-1] if started else None


def rank_row(doc: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
    """One rank's row of the job's table, from its record and effective status."""
    job = doc.get("job") or {}
    process = doc.get("process") if isinstance(doc.get("process"), dict) else {}
    step = _current_step(doc)
    steps = [
        {
            "name": s.get("name"),
            "status": s.get("status"),
            "duration_s": s.get("duration_s"),
            "elapsed_s": s.get("elapsed_s"),
            "progress": s.get("progress"),
            "resources": s.get("resources"),
        }
        for s in doc.get("steps") or []
        if isinstance(s, dict) and s.get("status") != "pending"
    ]
    telemetry = doc.get("telemetry") if isinstance(doc.get("telemetry"), dict) else None
    return {
        "rank": job.get("rank"),
        "local_rank": job.get("local_rank"),
        "host": job.get("host") or process.get("host"),
        "pid": process.get("pid"),
        "status": status,
        "reason": reason,
        "step": step.get("name") if step else None,
        "steps_completed": doc.get("steps_completed"),
        "steps_enabled": doc.get("steps_enabled"),
        "started_at": doc.get("started_at"),
        "ended_at": doc.get("ended_at"),
        "heartbeat_at": doc.get("heartbeat_at"),
        "duration_s": doc.get("duration_s"),
        "elapsed_s": doc.get("elapsed_s"),
        "exit_code": doc.get("exit_code"),
        "signal": doc.get("signal"),
        "error": doc.get("error"),
        "samples_host": telemetry is not None,
        "telemetry": telemetry,
        "steps": steps,
    }


def _failed_at(row: dict[str, Any]) -> float:
    # a killed rank has no end: its last heartbeat is when it was last known alive
    for key in ("ended_at", "heartbeat_at", "started_at"):
        at = parse_timestamp(row.get(key))
        if at is not None:
            return at
    return float("inf")


def rank_where(row: dict[str, Any], *, step: bool = True) -> str:
    """``rank 5 on host b`` (``at step 'train'`` with its step) of a rank's row."""
    text = f"rank {row.get('rank')} on host {row.get('host') or '?'}"
    return text + (f" at step {row['step']!r}" if step and row.get("step") else "")


def merge_job(
    doc: dict[str, Any],
    owner_status: str,
    owner_reason: str | None,
    parts: list[dict[str, Any]],
    status_of: Callable[[dict[str, Any]], tuple[str, str | None]],
) -> tuple[str, str | None]:
    """Fill ``doc["job"]`` with the ranks' table and counts; the job's status and why.

    ``owner_status`` is the effective status of ``doc``'s rank (rank 0's manifest, as
    inferred);
    ``status_of`` gives a rank part's (a part still ``running`` whose process died
    is ``aborted``). Idempotent: the table is rebuilt from ``parts`` each time.
    """
    job = doc.get("job")
    if not isinstance(job, dict):
        return owner_status, owner_reason
    # rank 0's manifest, or (a host's share without it) that host's lowest rank
    own = job.get("rank") if isinstance(job.get("rank"), int) else 0
    rows = {own: rank_row(doc, owner_status, owner_reason)}
    for part in parts:
        rank = part["job"]["rank"]
        if rank not in rows:
            rows[rank] = rank_row(part, *status_of(part))
    ordered = [rows[r] for r in sorted(rows)]
    world = job.get("world_size") if isinstance(job.get("world_size"), int) else len(ordered)
    counts: dict[str, int] = {}
    for row in ordered:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    hosts = sorted({str(r["host"]) for r in ordered if r.get("host")})
    missing = sorted(set(range(world)) - set(rows))
    merged = {
        **job,
        "ranks": ordered,
        "counts": counts,
        "hosts": hosts,
        "missing": missing,
        "first_failure": None,
        "died_with": [],
    }
    doc["job"] = merged
    failures = sorted((r for r in ordered if r["status"] in FAILED), key=_failed_at)
    if failures:
        first = failures[0]
        merged["first_failure"] = first["rank"]
        merged["died_with"] = [r["rank"] for r in failures[1:]]
        reason = f"{rank_where(first)} {first['status']}"
        detail = first.get("error") or first.get("reason")
        if isinstance(detail, dict):
            detail = detail.get("message") or detail.get("type")
        if detail:
            reason += f": {detail}"
        if len(failures) > 1:
            reason += f" (then {len(failures) - 1} more rank{'s' if len(failures) > 2 else ''})"
        return first["status"], reason
    if counts.get("cancelled"):
        cancelled = next(r for r in ordered if r["status"] == "cancelled")
        return "cancelled", f"{rank_where(cancelled)} was cancelled"
    live = [r for r in ordered if r["status"] in ("running", "stuck")]
    if live:
        stuck = next((r for r in live if r["status"] == "stuck"), None)
        if stuck is not None:
            return "stuck", f"{rank_where(stuck)}: {stuck.get('reason') or 'no progress'}"
        if owner_status in ("running", "stuck"):
            return owner_status, owner_reason
        return (
            "running",
            f"rank 0 ended; {len(live)} rank{'s' if len(live) > 1 else ''} still running",
        )
    if missing and owner_status == "completed":
        return owner_status, f"{len(missing)} of {world} ranks never reported"
    return owner_status, owner_reason
