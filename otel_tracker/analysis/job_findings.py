"""Findings about a distributed job's ranks: stragglers and the first failure.

A job finishes when its slowest rank does, and a collective waits for its last
arrival: a rank whose step took :data:`STRAGGLER_RATIO` times the median of its
peers made every other rank wait. When ranks fail, the first one is the root
cause; the ones that failed after it (a collective's timeout, a broken pipe)
died with it. Both read ``doc["job"]`` as :mod:`otel_tracker.contract.ranks`
merges it.
"""

from __future__ import annotations

import statistics
from typing import Any

from ..contract.ranks import rank_where
from ..timeparse import format_duration
from .rulebase import Recommendation

STRAGGLER_RATIO = 1.25
# a step shorter than this differs by noise (start-up, a scheduler tick), not by a rank
MIN_STRAGGLER_GAP_S = 0.5
MIN_PEERS = 3
MAX_STRAGGLER_FINDINGS = 10


def job_recommendations(doc: dict[str, Any]) -> list[Recommendation]:
    """The job's stragglers and its first failure (none for a run that is not a job's)."""
    job = doc.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("ranks"), list):
        return []
    ranks = [r for r in job["ranks"] if isinstance(r, dict)]
    return [*_first_failure(job, ranks), *_stragglers(ranks)]


def _first_failure(job: dict[str, Any], ranks: list[dict[str, Any]]) -> list[Recommendation]:
    first_rank = job.get("first_failure")
    first = next((r for r in ranks if r.get("rank") == first_rank), None)
    if first is None:
        return []
    after = [r for r in ranks if r.get("rank") in (job.get("died_with") or [])]
    error = first.get("error") if isinstance(first.get("error"), dict) else {}
    what = error.get("message") or error.get("type") or first.get("reason") or first["status"]
    step = f" in step {first['step']!r}" if first.get("step") else ""
    detected = f"{rank_where(first, step=False)} {first['status']} first{step}: {what}"
    if after:
        shown = ", ".join(str(r.get("rank")) for r in after[:16])
        more = f" and {len(after) - 16} more" if len(after) > 16 else ""
        detected += f"; {len(after)} rank(s) ended after it (ranks {shown}{more})"
    return [
        Recommendation(
            id="job-first-failure",
            severity="error",
            step=first.get("step"),
            detected=detected,
            why="in a distributed job one rank's failure makes its peers fail in turn "
            "(a collective times out, a connection breaks): the first failure is the cause",
            action=f"read rank {first.get('rank')}'s error and log first; the other ranks' "
            "errors are its consequences",
            evidence={
                "rank": first.get("rank"),
                "host": first.get("host"),
                "status": first["status"],
                "step": first.get("step"),
                "at": first.get("ended_at") or first.get("heartbeat_at"),
                "died_with": [r.get("rank") for r in after],
            },
        )
    ]


def _host_resources(ranks: list[dict[str, Any]], host: Any, step: str) -> dict[str, Any] | None:
    """The step's resources on ``host``, from its sampling rank's record."""
    for row in ranks:
        if row.get("host") == host and row.get("samples_host"):
            for s in row.get("steps") or []:
                if s.get("name") == step and isinstance(s.get("resources"), dict):
                    return s["resources"]
    return None


def _stragglers(ranks: list[dict[str, Any]]) -> list[Recommendation]:
    durations: dict[str, dict[int, float]] = {}
    rows = {r.get("rank"): r for r in ranks if isinstance(r.get("rank"), int)}
    for rank, row in rows.items():
        for s in row.get("steps") or []:
            d = s.get("duration_s")
            if s.get("status") == "completed" and isinstance(d, (int, float)):
                durations.setdefault(str(s.get("name")), {})[rank] = float(d)
    found: list[Recommendation] = []
    for step, by_rank in durations.items():
        if len(by_rank) < MIN_PEERS:
            continue
        for rank, took in sorted(by_rank.items(), key=lambda kv: -kv[1]):
            peers = [d for r, d in by_rank.items() if r != rank]
            median = statistics.median(peers)
            if took < STRAGGLER_RATIO * median or took - median < MIN_STRAGGLER_GAP_S:
                break  # sorted slowest first: no later rank is slower
            row = rows[rank]
            evidence: dict[str, Any] = {
                "rank": rank,
                "host": row.get("host"),
                "duration_s": round(took, 3),
                "median_s": round(median, 3),
                "ranks": len(by_rank),
                "ratio": round(took / median, 2) if median > 0 else None,
            }
            resources = _host_resources(ranks, row.get("host"), step)
            differed = ""
            if resources is not None:
                evidence["host_resources"] = resources
                differed = f"; its host's resources during the step: {_resource_text(resources)}"
            found.append(
                Recommendation(
                    id="job-straggler",
                    severity="warning",
                    step=step,
                    detected=f"{rank_where(row, step=False)}: {step} took {format_duration(took)} vs a median "
                    f"of {format_duration(median)} across {len(by_rank)} ranks{differed}",
                    why="a collective waits for its slowest rank: every other rank idled "
                    f"about {format_duration(took - median)} in this step",
                    action="compare that host's load (other jobs, thermal throttling, a "
                    "slower GPU or link) and the rank's share of the data",
                    evidence=evidence,
                )
            )
            if len(found) >= MAX_STRAGGLER_FINDINGS:
                return found
    return found


def _resource_text(resources: dict[str, Any]) -> str:
    shown = []
    for key, value in resources.items():
        if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)):
            shown.append(f"{key} mean {value['mean']:.3g}")
        elif isinstance(value, (int, float)):
            shown.append(f"{key} {value:.3g}")
        if len(shown) >= 4:
            break
    return ", ".join(shown) or "not sampled"
