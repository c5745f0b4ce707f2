"""A pipeline's earlier completed runs: what its ETA and its analysis learn from.

One query for both: the writer gets the median step durations through the
composition root (:func:`otel_tracker.api.track_run`), never by importing this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..config import ReaderConfig
from ..progress.eta import HISTORY_RUNS, StepHistory, step_history
from .store import Filters, RunStore

logger = logging.getLogger(__name__)


def earlier_runs(
    store: RunStore,
    name: str,
    scenario: str | None,
    *,
    before: float | None = None,
    excluding: str | None = None,
    key: str | None = None,
) -> list[dict[str, Any]]:
    """The manifests of the pipeline's last :data:`HISTORY_RUNS` completed runs, newest
    first (those that started by ``before``, other than the run ``excluding``; with a
    ``key``, only those of the same configuration: see ``track_run(key_params=)``)."""
    filters = Filters(
        statuses=frozenset({"completed"}), name=name, scenario=scenario, exact=True, until=before
    )
    docs = []
    for view in store.iter_runs(filters):
        if view.run_id == excluding or (key is not None and history_digest(view.doc) != key):
            continue
        docs.append(view.doc)
        if len(docs) == HISTORY_RUNS:
            break
    return docs


def history_digest(doc: dict[str, Any]) -> str | None:
    """The configuration key's digest a run was recorded with, if any."""
    key = doc.get("history_key")
    digest = key.get("digest") if isinstance(key, dict) else None
    return digest if isinstance(digest, str) else None


def step_medians(
    root: Path, name: str, scenario: str | None, key: str | None = None
) -> StepHistory:
    """Median step durations (and seconds per item) of the pipeline's earlier
    completed runs (of the same configuration key, if any), and how many runs they
    come from; best effort: a root that cannot be read has no history."""
    try:
        docs = earlier_runs(RunStore(config=ReaderConfig(root=root)), name, scenario, key=key)
        return step_history(docs)
    except Exception as exc:  # a root that is not a directory, a damaged file...
        logger.warning("otel-tracker could not read run history (%s); ETAs start without it", exc)
        logger.debug("reading the run history failed", exc_info=True)
        return StepHistory()
