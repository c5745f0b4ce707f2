"""Recovery: a run whose process died is finalized on disk as ``aborted``."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    doc["recovered"] = {"at": iso_utc(int(store.now() * 1e9)), "reason": reason}
    doc["warnings"] = [*doc.get("warnings", []), f"recovered as aborted: {reason}"]
    write_json_atomic(view.manifest_path, doc)
    return store.load(view.path)
