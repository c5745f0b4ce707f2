"""What a run holds on disk: its directory, and the artifacts it recorded elsewhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..contract.removal import tree_bytes


def disk_use(run_dir: Path, doc: dict[str, Any]) -> tuple[int, int]:
    """Bytes of the run's directory (links not followed), and of the artifacts it
    recorded outside it, as recorded (a folder's size is not recorded: not counted;
    nor is a pruned artifact's)."""
    inside = tree_bytes(run_dir)
    outside = 0
    prefix = str(run_dir) + os.sep
    for artifact in _artifacts(doc):
        path, size = str(artifact.get("path", "")), artifact.get("size_bytes")
        if artifact.get("pruned_at") is not None:
            continue  # removed by prune --artifacts: its entry is the record of it
        if isinstance(size, int) and size >= 0 and not path.startswith(prefix):
            outside += size
    return inside, outside


def _artifacts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = [a for a in doc.get("artifacts") or [] if isinstance(a, dict)]
    for step in doc.get("steps") or []:
        if isinstance(step, dict):
            found += [a for a in step.get("artifacts") or [] if isinstance(a, dict)]
    return found
