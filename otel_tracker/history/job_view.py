"""A distributed job's run as readers show it: rank 0's record plus every rank's part,
with the job's status (see :mod:`otel_tracker.contract.ranks`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, read_json
from ..contract.parts import PARTS_DIR
from ..contract.paths import MANIFEST_NAME
from ..contract.ranks import MAX_RANK_PART_BYTES, merge_job, rank_part_name, read_rank_parts
from ..contract.run_status import Inference, infer_status, run_time_now
from ..contract.user_metrics import merge_user_metrics


def merge_job_ranks(
    doc: dict[str, Any],
    run_dir: Path,
    inference: Inference,
    *,
    now: float,
    host: str,
    stale_after: float,
    stuck_after: float,
    pid_probe: Callable[[int], float | bool | None],
) -> tuple[Inference, list[str]]:
    """The job's inference (its status over all ranks) and the problems met; a run
    that is not a job's is returned as it was."""
    if not isinstance(doc.get("job"), dict):
        return inference, []
    parts_dir = run_dir / PARTS_DIR
    parts, problems = read_rank_parts(parts_dir)

    def status_of(part: dict[str, Any]) -> tuple[str, str | None]:
        found = infer_status(
            part,
            parts_dir,
            now=run_time_now(part, now),
            host=host,
            stale_after=stale_after,
            stuck_after=stuck_after,
            pid_probe=pid_probe,
        )
        return found.status, found.reason

    status, reason = merge_job(doc, inference.status, inference.reason, parts, status_of)
    # every rank's counters add up to the job's, onto rank 0's and its joined parts'
    merge_user_metrics(doc, parts, onto_merged=True)
    if (status, reason) == (inference.status, inference.reason):
        return inference, problems
    alive = status in ("running", "stuck") or None
    return Inference(status, reason, alive), problems


def job_counts(doc: dict[str, Any]) -> dict[str, Any] | None:
    """A job's size and outcome for ``list --json`` and the status API (``None`` for a
    single process's run)."""
    job = doc.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("ranks"), list):
        return None
    return {
        "id": job.get("id"),
        "launcher": job.get("launcher"),
        "attempt": job.get("attempt"),
        "world_size": job.get("world_size"),
        "ranks": len(job["ranks"]),
        "hosts": list(job.get("hosts") or []),
        "counts": job.get("counts"),
        "missing": job.get("missing"),
        "first_failure": job.get("first_failure"),
        "died_with": job.get("died_with"),
    }


def slowest_rank(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The live rank furthest behind (fewest steps done, then least progress in its
    running step): a job finishes when its slowest rank does."""
    job = doc.get("job")
    ranks = job.get("ranks") if isinstance(job, dict) else None
    live = [r for r in ranks or [] if r.get("status") in ("running", "stuck")]
    if not live:
        return None

    def behind(row: dict[str, Any]) -> tuple[int, float]:
        fraction = 0.0
        for s in row.get("steps") or []:
            p = s.get("progress") if isinstance(s.get("progress"), dict) else {}
            if s.get("status") == "running" and p.get("total"):
                fraction = (p.get("completed") or 0) / p["total"]
        return row.get("steps_completed") or 0, fraction

    return min(live, key=behind)


def rank_doc(run_dir: Path, rank: int) -> dict[str, Any] | None:
    """One rank's record: the manifest for rank 0, else its part (``None`` if unreadable)."""
    path = run_dir / (MANIFEST_NAME if rank == 0 else f"{PARTS_DIR}/{rank_part_name(rank)}.json")
    try:
        doc = read_json(path, MAX_RANK_PART_BYTES if rank else 64 * 1024 * 1024)
    except FileProblem:
        return None
    return doc if isinstance(doc, dict) else None


def host_share(run_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """A job's run directory with rank parts but no manifest: a host's share of a job
    whose rank 0 wrote under another root (no shared filesystem; ``otel-tracker
    gather`` joins them). Its lowest rank stands for the run, with a warning saying
    so; ``None`` when there are no rank parts. Also the folder of that rank's lock."""
    parts, _ = read_rank_parts(run_dir / PARTS_DIR)
    if not parts:
        return None
    lowest = min(parts, key=lambda p: p["job"]["rank"])
    doc = dict(lowest)
    doc.pop("part", None)
    hosts = sorted({str(p["job"].get("host")) for p in parts})
    doc["warnings"] = [
        *(doc.get("warnings") or []),
        f"rank 0's manifest is not under this root: this is the share of host(s) "
        f"{', '.join(hosts)} of job {doc['job'].get('id')} (no shared filesystem?); "
        "otel-tracker gather joins the hosts' shares into rank 0's run",
    ]
    return doc, run_dir / PARTS_DIR


def ranks_text(job: dict[str, Any]) -> str:
    """``8 ranks / 2 hosts``, or ``2 of 4 ranks / 1 host`` when ranks are missing, of a
    merged ``job`` section (what list, show and status print)."""
    ranks, world = len(job["ranks"]), job.get("world_size")
    hosts = len(job.get("hosts") or [])
    shown = f"{ranks} ranks" if world in (None, ranks) else f"{ranks} of {world} ranks"
    return f"{shown} / {hosts} host{'s' if hosts != 1 else ''}"


def counts_text(job: dict[str, Any]) -> str:
    """``7 completed, 1 failed``."""
    return ", ".join(f"{n} {s}" for s, n in sorted((job.get("counts") or {}).items()))
