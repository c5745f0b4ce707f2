"""``run.add_count`` / ``run.set_gauge`` values in the run's documents.

Every process writes its own in its document's ``user_metrics``
(``{"counters": {name: total}, "gauges": {name: last value}}``): the sampler exports
them as ``otel_tracker.user.<name>`` only where it runs, and a joined child or a
job's rank does not sample. Readers (and the writer, when it merges its parts) give
the run's: counters add up over the processes, a gauge is the latest process's
that set it, and ``own`` keeps the document's own values, so merging again counts
nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..values import is_real

KINDS = ("counters", "gauges")


def merge_user_metrics(
    doc: dict[str, Any], others: Iterable[dict[str, Any]], *, onto_merged: bool = False
) -> None:
    """``doc["user_metrics"]`` over ``doc`` and ``others`` (its parts or ranks, oldest
    first). ``onto_merged``: add onto what is merged already (a job's ranks onto rank
    0's run with its joined parts), not onto the document's own values."""
    mine = doc.get("user_metrics")
    own = _values(mine.get("own", mine)) if isinstance(mine, dict) else _values(None)
    base = _values(mine) if onto_merged and isinstance(mine, dict) else own
    merged = {kind: dict(base[kind]) for kind in KINDS}
    added = False
    for other in others:
        theirs = _values(other.get("user_metrics"))
        for name, value in theirs["counters"].items():
            merged["counters"][name] = merged["counters"].get(name, 0.0) + value
            added = True
        for name, value in theirs["gauges"].items():
            merged["gauges"][name] = value
            added = True
    if added:
        doc["user_metrics"] = {**merged, "own": own}


def _values(section: Any) -> dict[str, dict[str, float]]:
    """The counters and gauges of one document's section; anything malformed left out."""
    out: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
    if not isinstance(section, dict):
        return out
    for kind in KINDS:
        values = section.get(kind)
        if isinstance(values, dict):
            out[kind] = {
                str(k): float(v) for k, v in values.items() if isinstance(k, str) and is_real(v)
            }
    return out
