"""Packing finished runs' telemetry (``otel-tracker compact``): roll-ups past a
recent window, then gzip (see :mod:`otel_tracker.contract.telemetry_pack`).

A run that is live (its lock is held, or its status says so) is never touched; a
packed run is left as it is. The history it leaves is still read by every reader
(``show``, ``summary``, the web view) through
:func:`otel_tracker.contract.telemetry_form.read_records`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..contract.liveness import lock_is_held
from ..contract.paths import LOCK_NAME
from ..contract.telemetry_form import ROLLUP_NAME, TELEMETRY_NAME, telemetry_bytes
from ..contract.telemetry_pack import pack_telemetry
from ..history.manifest_head import manifest_head
from ..history.store import BadManifestError, RunStore
from .retention import LIVE


@dataclass(frozen=True)
class CompactItem:
    """One run's telemetry, before and (once packed) after."""

    run_id: str
    bytes_before: int
    bytes_after: int | None = None
    rolled_up: int = 0


def packable(store: RunStore, run_ids: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """The runs whose telemetry is still in its live form and that are finished
    (all of the root's when ``run_ids`` is None); and one line per run skipped."""
    names = list(run_ids) if run_ids is not None else store.run_dir_names()
    chosen: list[str] = []
    skipped: list[str] = []
    for name in names:
        path = store.root / name
        if not ((path / TELEMETRY_NAME).exists() or (path / ROLLUP_NAME).exists()):
            if run_ids is not None:
                skipped.append(f"{name}: no live telemetry (packed already, or none)")
            continue
        if lock_is_held(path / LOCK_NAME):
            skipped.append(f"{name}: running (its lock is held): not packed")
            continue
        head = manifest_head(path)
        status = head.status if head is not None else _status(store, path)
        if status is None or status in LIVE:
            skipped.append(f"{name}: {status or 'unreadable'}: not packed")
            continue
        chosen.append(name)
    return chosen, skipped


def _status(store: RunStore, path: Path) -> str | None:
    try:
        return store.load(path).status
    except BadManifestError:
        return None


def compact_run(store: RunStore, run_id: str, window_s: float, rollup_s: float) -> CompactItem:
    """Pack one run chosen by :func:`packable`."""
    path = store.root / run_id
    before = telemetry_bytes(path)
    if lock_is_held(path / LOCK_NAME):  # started again since it was chosen
        return CompactItem(run_id, before)
    packed = pack_telemetry(path, window_s=window_s, interval_s=rollup_s)
    if packed is None:
        return CompactItem(run_id, before)
    return CompactItem(run_id, packed.bytes_before, packed.bytes_after, packed.rolled_up)
