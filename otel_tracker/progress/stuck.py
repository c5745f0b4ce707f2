"""When a running step looks stuck: the rule the live display and the readers share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..timeparse import format_duration, parse_timestamp


def stuck_reason(doc: Mapping[str, Any], now: float, stuck_after: float) -> str | None:
    """Why the running step looks stuck at ``now``, or ``None``."""
    running = [
        s for s in doc.get("steps") or () if isinstance(s, dict) and s.get("status") == "running"
    ]
    if not running:
        return None
    step = running[-1]
    progress = step.get("progress") or {}
    started = parse_timestamp(step.get("started_at"))
    expected = step.get("expected_duration_s")
    expected = float(expected) if isinstance(expected, (int, float)) and expected > 0 else None
    reports_progress = bool(progress.get("completed")) or progress.get("total") is not None
    if reports_progress:
        moved = parse_timestamp(progress.get("updated_at")) or started
        if moved is None:
            return None
        idle = now - moved
        limit = max(stuck_after, expected or 0.0)
        if idle > limit:
            return f"no progress in step {step.get('name')!r} for {format_duration(idle)}"
        return None
    if expected is not None and started is not None:
        elapsed = now - started
        if elapsed > 3 * expected + stuck_after:
            return (
                f"step {step.get('name')!r} has run {format_duration(elapsed)}, "
                f"expected {format_duration(expected)}"
            )
    return None
