"""A distributed job in reports: its one-line summary, the per-rank table and the
slowest rank (what ``list``, ``show``, ``status`` and the typed API show)."""

from __future__ import annotations

from typing import Any

from ..history.job_view import counts_text, ranks_text
from ..timeparse import format_duration


def job_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The merged ``job`` section (with ``ranks``), or ``None``."""
    job = doc.get("job")
    return job if isinstance(job, dict) and isinstance(job.get("ranks"), list) else None


# in a report, a rank's row without its steps and telemetry: those make 13 KB a rank
# (53 MB of summary files for 4,096 ranks); the findings carry what they showed
REPORT_LEFT_OUT = ("steps", "telemetry")


def report_job(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The job as a report carries it: its figures and a short row per rank."""
    job = job_of(doc)
    if job is None:
        return None
    ranks = [{k: v for k, v in r.items() if k not in REPORT_LEFT_OUT} for r in job["ranks"]]
    return {**job, "ranks": ranks}


def job_line(job: dict[str, Any]) -> str:
    """``8 ranks / 2 hosts (torchrun, attempt 1): 7 completed, 1 failed``."""
    where = ", ".join(str(x) for x in (job.get("launcher"), f"attempt {job.get('attempt')}") if x)
    counts = counts_text(job)
    return f"{ranks_text(job)} ({where})" + (f": {counts}" if counts else "")


def list_cell(job: dict[str, Any] | None) -> str:
    """``list``'s ranks column: ``8 ranks / 2 hosts``, ``-`` for a single process."""
    if job is None:
        return "-"
    attempt = job.get("attempt")
    again = f", attempt {attempt}" if isinstance(attempt, int) and attempt > 1 else ""
    return ranks_text(job) + again


def rank_table(job: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """``show``'s table: one row per rank."""
    headers = ["rank", "host", "local", "status", "step", "steps", "duration", "note"]
    rows = []
    for r in job["ranks"]:
        error = r.get("error") if isinstance(r.get("error"), dict) else {}
        note = error.get("message") or error.get("type") or r.get("reason") or ""
        if r.get("rank") == job.get("first_failure"):
            note = f"first failure: {note}" if note else "first failure"
        elif r.get("rank") in (job.get("died_with") or []):
            note = f"after rank {job.get('first_failure')}: {note}" if note else "after the first"
        duration = r.get("duration_s") if r.get("duration_s") is not None else r.get("elapsed_s")
        rows.append(
            [
                str(r.get("rank")),
                str(r.get("host") or "-"),
                "-" if r.get("local_rank") is None else str(r["local_rank"]),
                str(r.get("status")),
                str(r.get("step") or "-"),
                f"{r.get('steps_completed') or 0}/{r.get('steps_enabled') or 0}",
                format_duration(duration),
                str(note)[:200],
            ]
        )
    return headers, rows
