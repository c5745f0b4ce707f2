"""Recovery: a run whose process died is finalized on disk as ``aborted``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import iso_utc
from ..contract.atomic import write_json_atomic
from ..contract.paths import MANIFEST_NAME
from ..errors import OtelTrackerError
from ..timeparse import parse_timestamp

if TYPE_CHECKING:
    from .store import RunStore, RunView


def recover(store: RunStore, ref: str) -> RunView:
    """Finalize a dead run's manifest on disk as ``aborted``, keeping all partial data.

    Only the manifest: its summary files are the analysis' to write (the CLI's
    ``recover`` does, after this)."""
    view = store.get(ref)
    if view.without_manifest:
        raise OtelTrackerError(
            f"run {view.run_id} has no {MANIFEST_NAME} to finalize ({view.inference.reason}); "
            f"remove {view.path} to forget it"
        )
    if view.doc.get("status") != "running":
        raise OtelTrackerError(
            f"run {view.run_id} is already finalized as {view.doc.get('status')}"
        )
    if view.status != "aborted":
        raise OtelTrackerError(
            f"run {view.run_id} is {view.status}; only a run whose process is gone can be recovered"
        )
    doc = dict(view.doc)
    reason = view.inference.reason or "process gone"
    ended = doc.get("heartbeat_at") or doc.get("started_at")
    doc["status"] = "aborted"
    doc["ended_at"] = ended
    start, end = parse_timestamp(doc.get("started_at")), parse_timestamp(ended)
    if start is not None and end is not None:
        doc["duration_s"] = round(max(0.0, end - start), 6)
    steps = []
    for step in doc.get("steps", []):
        step = dict(step)
        if step.get("status") == "running":
            step["status"] = "failed"
            step["ended_at"] = ended
            step["error"] = {
                "type": "Aborted",
                "message": f"run aborted: {reason}",
                "traceback": None,
            }
        steps.append(step)
    doc["steps"] = steps
    doc["current_step"] = None
    _rebuild_metrics(doc, view.path)
    doc["recovered"] = {"at": iso_utc(int(store.now() * 1e9)), "reason": reason}
    doc["warnings"] = [*doc.get("warnings", []), f"recovered as aborted: {reason}"]
    write_json_atomic(view.manifest_path, doc)
    return store.load(view.path)


def _rebuild_metrics(doc: dict[str, Any], run_dir: Path) -> None:
    """The run's own series summaries from ``metrics.jsonl``: the process may have
    died after a batch reached the file and before the manifest followed (at most one
    flush interval). A key keeps the manifest's summary where the file holds fewer
    points (a damaged file never makes the record smaller)."""
    from .series_file import own_summaries

    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    own = metrics.get("own_keys", metrics.get("keys")) or {}
    if not isinstance(own, dict):
        own = {}
    directions = {
        k: v["direction"] for k, v in own.items() if isinstance(v, dict) and v.get("direction")
    }
    problems: list[str] = []
    rebuilt = own_summaries(run_dir, directions, problems)
    keys = dict(own)
    added = 0
    for key, summary in rebuilt.items():
        known = keys.get(key)
        counted = known.get("count") if isinstance(known, dict) else None
        if not isinstance(counted, int) or summary["count"] > counted:
            added += summary["count"] - (counted if isinstance(counted, int) else 0)
            keys[key] = summary
    if not added:
        return
    # the parts are merged in again by every reader (own_keys dropped with them)
    doc["metrics"] = {
        **{k: v for k, v in metrics.items() if k not in ("keys", "own_keys")},
        "keys": keys,
    }
    doc["warnings"] = [
        *doc.get("warnings", []),
        f"{added} metric point(s) the manifest had not counted were summarised from metrics.jsonl",
    ]
