"""A typed status API for scripts and agents that babysit many runs.

>>> from otel_tracker.status import get_all_run_status
>>> for st in get_all_run_status("output/run-tracker"):
...     print(st.run_id, st.status, st.progress.percent)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis.report import error_text
from .history.job_view import slowest_rank
from .history.store import Filters, RunStore, RunView


@dataclass(frozen=True)
class ProcessInfo:
    """Where the run ran."""

    pid: int | None
    host: str | None
    start_time: float | None
    alive: bool | None


@dataclass(frozen=True)
class ProgressInfo:
    """How far the run got.

    ``completed``/``total`` count steps; ``step_completed``/``step_total`` the items
    (epochs, env steps...) of the current or last step when it reports them.
    """

    completed: int
    total: int
    unit: str
    percent: float | None
    current_step: str | None
    step_completed: int | None
    step_total: int | None
    step_unit: str | None
    early_stopped: bool
    stopped_at: str | None


@dataclass(frozen=True)
class RankStatus:
    """One rank of a distributed job."""

    rank: int
    host: str | None
    local_rank: int | None
    pid: int | None
    status: str
    status_reason: str | None
    current_step: str | None
    steps_completed: int
    steps_enabled: int
    duration_s: float | None
    error: str | None


@dataclass(frozen=True)
class JobInfo:
    """A distributed job's ranks (``RunStatus.job`` is ``None`` for one process).

    ``status`` of the run is the job's: completed only when every rank completed;
    ``first_failure`` is the rank that failed first, ``died_with`` the ones after it.
    """

    id: str | None
    launcher: str | None
    attempt: int | None
    world_size: int | None
    hosts: tuple[str, ...]
    counts: dict[str, int]
    missing: tuple[int, ...]
    first_failure: int | None
    died_with: tuple[int, ...]
    slowest_rank: int | None
    ranks: tuple[RankStatus, ...]


@dataclass(frozen=True)
class RunStatus:
    """Everything a babysitter needs about one run, in one object."""

    run_id: str
    name: str
    scenario: str | None
    kind: str | None
    status: str
    recorded_status: str
    status_reason: str | None
    outdated: bool
    work_dir: Path
    process: ProcessInfo
    progress: ProgressInfo
    started_at: str | None
    updated_at: str | None
    ended_at: str | None
    best_scores: dict[str, float]
    latest_scores: dict[str, float]
    error: str | None
    warnings: tuple[str, ...]
    # per key logged with run.log(): count, first/last step, last, min, max, best,
    # direction and a curve of at most 64 [step, value] points (see the manifest schema)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    job: JobInfo | None = None


def _progress(doc: dict[str, Any], status: str) -> ProgressInfo:
    steps = [s for s in doc.get("steps", []) if s.get("status") != "skipped"]
    done = sum(1 for s in steps if s.get("status") == "completed")
    started = [s for s in steps if s.get("status") in ("running", "completed", "failed")]
    focus = started[-1] if started else None
    p = (focus or {}).get("progress") or {}
    step_completed, step_total = p.get("completed"), p.get("total")
    fraction = None
    if steps:
        partial = 0.0
        if focus is not None and focus.get("status") == "running" and step_total:
            partial = min(1.0, (step_completed or 0) / step_total)
        fraction = (done + partial) / len(steps)
    early_stopped, stopped_at = False, None
    if status == "completed":
        for s in steps:
            sp = s.get("progress") or {}
            if (
                s.get("status") == "completed"
                and sp.get("total")
                and sp.get("completed", 0) < sp["total"]
            ):
                early_stopped = True
                stopped_at = f"{s['name']}: {sp.get('completed', 0)}/{sp['total']} {sp.get('unit') or 'items'}"
                break
        pending = [s["name"] for s in steps if s.get("status") == "pending"]
        if pending and not early_stopped:
            early_stopped, stopped_at = True, f"before {pending[0]}"
    return ProgressInfo(
        completed=done,
        total=len(steps),
        unit="steps",
        percent=None if fraction is None else round(100 * fraction, 1),
        current_step=focus.get("name") if focus and focus.get("status") == "running" else None,
        step_completed=step_completed if focus else None,
        step_total=step_total if focus else None,
        step_unit=p.get("unit") if focus else None,
        early_stopped=early_stopped,
        stopped_at=stopped_at,
    )


def run_status(view: RunView) -> RunStatus:
    """The typed status of a loaded run."""
    doc = view.doc
    process = doc.get("process") or {}
    scores = doc.get("scores") or {}
    error = doc.get("error")
    return RunStatus(
        run_id=view.run_id,
        name=str(doc.get("name")),
        scenario=doc.get("scenario"),
        kind=doc.get("kind"),
        status=view.status,
        recorded_status=str(doc.get("status")),
        status_reason=view.inference.reason,
        outdated=view.outdated,
        work_dir=view.path,
        process=ProcessInfo(
            pid=process.get("pid"),
            host=process.get("host"),
            start_time=process.get("start_time"),
            alive=view.inference.alive,
        ),
        progress=_progress(doc, view.status),
        started_at=doc.get("started_at"),
        updated_at=doc.get("heartbeat_at") or doc.get("ended_at"),
        ended_at=doc.get("ended_at"),
        best_scores={k: v["best"] for k, v in scores.items() if v.get("best") is not None},
        latest_scores={k: v["latest"] for k, v in scores.items() if v.get("latest") is not None},
        error=error_text(error),
        warnings=tuple(doc.get("warnings") or ()),
        metrics=dict((doc.get("metrics") or {}).get("keys") or {}),
        job=_job(doc),
    )


def _job(doc: dict[str, Any]) -> JobInfo | None:
    job = doc.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("ranks"), list):
        return None
    slowest = slowest_rank(doc)
    return JobInfo(
        id=job.get("id"),
        launcher=job.get("launcher"),
        attempt=job.get("attempt"),
        world_size=job.get("world_size"),
        hosts=tuple(job.get("hosts") or ()),
        counts=dict(job.get("counts") or {}),
        missing=tuple(job.get("missing") or ()),
        first_failure=job.get("first_failure"),
        died_with=tuple(job.get("died_with") or ()),
        slowest_rank=None if slowest is None else slowest.get("rank"),
        ranks=tuple(
            RankStatus(
                rank=int(r["rank"]),
                host=r.get("host"),
                local_rank=r.get("local_rank"),
                pid=r.get("pid"),
                status=str(r.get("status")),
                status_reason=r.get("reason"),
                current_step=r.get("step"),
                steps_completed=r.get("steps_completed") or 0,
                steps_enabled=r.get("steps_enabled") or 0,
                duration_s=r.get("duration_s"),
                error=error_text(r.get("error")),
            )
            for r in job["ranks"]
        ),
    )


def get_run_status(
    run: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> RunStatus:
    """Status of one run: an id, unique prefix, ``latest``, or a run directory path."""
    store = RunStore.open(root)
    ref = os.fspath(run)
    return run_status(store.get(ref))


def get_all_run_status(
    root: str | os.PathLike[str] | None = None,
    *,
    statuses: tuple[str, ...] = (),
    limit: int | None = None,
) -> list[RunStatus]:
    """Status of every run under ``root`` (newest first); unreadable runs are left out."""
    store = RunStore.open(root)
    views = store.list(Filters(statuses=frozenset(statuses)), limit=limit)
    return [run_status(v) for v in views]
