"""What a killed run's manifest lacks, rebuilt from its ``telemetry.jsonl``.

A step's resource figures (min/mean/max/p95 per series) go into the manifest when
the step ends. A run SIGKILLed inside a step never ends it, so the manifest has
no figures for that step, although the sampler kept appending the step's samples
(each line names its step) to ``telemetry.jsonl``. For an aborted run, readers
rebuild those figures from the file. The cost is bounded: only the file's last
:data:`MAX_TAIL_BYTES` are read (the unfinished step is at its end), through the
same bounded reader as every run file (:mod:`otel_tracker.contract.jsonfile`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, loads, read_bytes
from ..timeparse import parse_timestamp
from ..values import is_real

TELEMETRY_NAME = "telemetry.jsonl"
MAX_TAIL_BYTES = 8 * 1024 * 1024  # ~4,000 samples of a busy machine


def rebuild_step_resources(doc: dict[str, Any], run_dir: Path) -> list[str]:
    """Fill the ``resources`` of ``doc``'s unfinished steps (running, or failed without
    figures) from ``telemetry.jsonl``; the names of the steps filled."""
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
    try:
        data = read_bytes(run_dir / TELEMETRY_NAME, MAX_TAIL_BYTES, tail=True)
    except FileProblem:
        return []
    lines = data.split(b"\n")
    if len(data) == MAX_TAIL_BYTES:
        lines = lines[1:]  # it may start mid-line
    since = {s["name"]: parse_timestamp(s["started_at"]) for s in steps}
    values: dict[str, dict[str, list[float]]] = {}
    for line in lines:
        sample = _sample(line)
        if sample is None or sample.get("step") not in since:
            continue
        at = parse_timestamp(sample.get("t"))
        if at is None or at < since[sample["step"]]:
            continue  # an earlier step of the same name
        found = values.setdefault(sample["step"], {})
        for key, value in sample["points"].items():
            if key in series and is_real(value):
                found.setdefault(key, []).append(float(value))
    filled = []
    for step in steps:
        if values.get(step["name"]):
            step["resources"] = {k: _stats(v) for k, v in sorted(values[step["name"]].items())}
            filled.append(step["name"])
    return filled


def _sample(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        sample = loads(line, TELEMETRY_NAME)
    except FileProblem:  # a line torn by the kill, or damaged
        return None
    if not isinstance(sample, dict) or not isinstance(sample.get("points"), dict):
        return None
    return sample


def _stats(values: list[float]) -> dict[str, Any]:
    """The manifest's aggregate of one series (the writer's p95 is nearest-rank too)."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, math.ceil(0.95 * len(ordered)) - 1))]
    return {
        "count": len(ordered),
        "min": round(ordered[0], 6),
        "mean": round(sum(ordered) / len(ordered), 6),
        "max": round(ordered[-1], 6),
        "p95": round(p95, 6),
    }
