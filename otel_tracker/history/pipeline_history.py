"""A pipeline's earlier completed runs: what its ETA and its analysis learn from.

One query for both: the writer gets the median step durations through the
composition root (:func:`otel_tracker.api.track_run`), never by importing this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..config import ReaderConfig
from ..progress.eta import HISTORY_RUNS, history_medians
from .store import Filters, RunStore

logger = logging.getLogger(__name__)


def earlier_runs(
    store: RunStore,
    name: str,
    scenario: str | None,
    *,
    before: float | None = None,
    excluding: str | None = None,
) -> list[dict[str, Any]]:
    """The manifests of the pipeline's last :data:`HISTORY_RUNS` completed runs, newest
    first (those that started by ``before``, other than the run ``excluding``)."""
    filters = Filters(
        statuses=frozenset({"completed"}), name=name, scenario=scenario, exact=True, until=before
    )
    limit = HISTORY_RUNS + (excluding is not None)
    docs = [view.doc for view in store.list(filters, limit=limit) if view.run_id != excluding]
    return docs[:HISTORY_RUNS]


def step_medians(root: Path, name: str, scenario: str | None) -> tuple[dict[str, float], int]:
    """Median step durations of the pipeline's earlier completed runs, and how many
    runs they come from; best effort: a root that cannot be read has no history."""
    try:
        docs = earlier_runs(RunStore(config=ReaderConfig(root=root)), name, scenario)
        return history_medians(docs), len(docs)
    except Exception as exc:  # a root that is not a directory, a damaged file...
        logger.warning("otel-tracker could not read run history (%s); ETAs start without it", exc)
        logger.debug("reading the run history failed", exc_info=True)
        return {}, 0
