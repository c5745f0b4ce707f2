"""``perf_test_results.json``'s identity: its kind, its version, and the check a
reader makes before using one (the published schema is
``otel_tracker/schema/perf_test_results.schema.json``).

Versions: 1, the first shape; 2 adds ``hardware`` (top level and per scenario),
band limits (``min``/``max``) in ``thresholds``, ``checks`` (counters, gauges,
series), ``latency_samples_ms``, ``notes``, the verdict ``hardware-mismatch`` and
the levels ``below-band``, ``above-band`` and ``not-recorded``. A version 1 file is
still read as a baseline.
"""

from __future__ import annotations

from typing import Any

from ..analysis.baseline import check_version
from ..errors import OtelTrackerError

RESULTS_KIND = "otel-tracker-perf-test-results"
RESULTS_VERSION = 2


def is_results(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == RESULTS_KIND


def check_results(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """``doc`` if this version can read it as a baseline; a clear error otherwise."""
    check_version(doc, "results_version", RESULTS_VERSION, source)
    if not isinstance(doc.get("scenarios"), list):
        raise OtelTrackerError(f"{source}: not a usable results file (no scenarios list)")
    return doc
