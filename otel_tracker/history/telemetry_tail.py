"""What a killed run's manifest lacks, rebuilt from its telemetry.

A step's resource figures (min/mean/max/p95 per series) go into the manifest when
the step ends. A run SIGKILLed inside a step never ends it, so the manifest has
no figures for that step, although the sampler kept writing the step's samples
(each line names its step) to its telemetry. For an aborted run, readers rebuild
those figures from the files, in either form (raw samples, and roll-ups of the
time before the recent window; see :mod:`otel_tracker.contract.telemetry_form`).
The cost is bounded: only the last :data:`MAX_TAIL_BYTES` of the raw file and
:data:`MAX_ROLLUP_TAIL_BYTES` of the roll-ups are read (the unfinished step is at
their end), and lines from before the step are skipped without being parsed.

From roll-ups, min, max and the mean are exact; p95 counts each roll-up's samples
at the roll-up's max, so it is an upper bound where roll-ups are involved (the
writer's own p95 is a 512-sample reservoir's estimate).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..contract.telemetry_form import TELEMETRY_NAME, Stats, read_records, record_stats
from ..timeparse import parse_timestamp

__all__ = ["MAX_TAIL_BYTES", "TELEMETRY_NAME", "aggregate", "rebuild_step_resources"]

MAX_TAIL_BYTES = 8 * 1024 * 1024  # ~4,000 samples of a busy machine
# roll-ups: 2.5 days of a 16-core, 8-GPU machine's, 8 days of a 2-core one's (lines
# from before the steps are skipped unparsed, so only the steps' own cost parsing)
MAX_ROLLUP_TAIL_BYTES = 32 * 1024 * 1024


def rebuild_step_resources(doc: dict[str, Any], run_dir: Path) -> list[str]:
    """Fill the ``resources`` of ``doc``'s unfinished steps (running, or failed without
    figures) from the run's telemetry; the names of the steps filled."""
    steps = [
        s
        for s in doc.get("steps") or []
        if isinstance(s, dict)
        and s.get("status") in ("running", "failed")
        and not s.get("resources")
        and parse_timestamp(s.get("started_at")) is not None
    ]
    # the run's aggregates name the series that are summarized (not run-state gauges)
    series = set((doc.get("telemetry") or {}).get("run") or {})
    if not steps or not series:
        return []
    since = {s["name"]: parse_timestamp(s["started_at"]) for s in steps}
    values: dict[str, dict[str, list[Stats]]] = {}
    records = read_records(
        run_dir,
        tail_bytes=MAX_TAIL_BYTES,
        rollup_tail_bytes=MAX_ROLLUP_TAIL_BYTES,
        since=min(since.values()),
    )
    for at, record in records:
        step = record.get("step")
        if step not in since or at < since[step]:
            continue  # another step, or an earlier step of the same name
        found = values.setdefault(step, {})
        for key, stats in record_stats(record).items():
            if key in series:
                found.setdefault(key, []).append(stats)
    filled = []
    for step in steps:
        if values.get(step["name"]):
            step["resources"] = {k: aggregate(v) for k, v in sorted(values[step["name"]].items())}
            filled.append(step["name"])
    return filled


def aggregate(parts: list[Stats]) -> dict[str, Any]:
    """The manifest's aggregate of one series from raw samples and roll-ups (p95 by
    nearest rank, as the writer's)."""
    count = sum(p[4] for p in parts)
    ordered = sorted((p[2], p[4]) for p in parts)  # (max, count): a raw sample's value
    rank = min(count, max(1, math.ceil(0.95 * count)))
    seen = 0
    p95 = ordered[-1][0]
    for value, n in ordered:
        seen += n
        if seen >= rank:
            p95 = value
            break
    return {
        "count": count,
        "min": round(min(p[0] for p in parts), 6),
        "mean": round(sum(p[1] * p[4] for p in parts) / count, 6),
        "max": round(max(p[2] for p in parts), 6),
        "p95": round(p95, 6),
    }
