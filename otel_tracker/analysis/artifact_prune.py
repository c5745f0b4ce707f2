"""``prune --artifacts``: remove the artifacts runs registered (checkpoints,
TensorBoard and W&B directories...), keep the runs and the record of what was there.

The runs are chosen exactly as ``prune`` chooses runs to remove (so a running run,
a baseline's source, the newest completed run of each pipeline and the last N of
each pipeline keep their artifacts); among their artifacts, ``kinds`` and
``larger_than`` select, and ``keep`` spares the one a score chose (``best``) and
the last checkpoint registered (``last``).

Never removed: an artifact that is missing, whose path is relative with no
recorded working directory, that is the root, a run directory or any folder above
one, the user's home or the run's working directory or a folder above them, a
path inside the root that is not inside its own run, or a path another run (not
pruned now) registered too, or one inside or above such a path.

Each run's manifest marks its artifacts ``pruned_at`` (with the size measured
then) before they are removed: a prune killed in between leaves marked paths that
still exist, and the next prune finishes them. A removal that fails unmarks.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import iso_utc
from ..contract.atomic import write_json_atomic
from ..contract.liveness import lock_is_held
from ..contract.paths import LOCK_NAME, MANIFEST_NAME
from ..contract.removal import leftovers_of, remove_leftover, remove_path, tree_bytes
from ..errors import OtelTrackerError
from ..history.store import BadManifestError, RunStore, read_manifest
from .retention import PrunePlan


@dataclass(frozen=True)
class ArtifactItem:
    run_id: str
    path: str  # as recorded
    location: str  # where it is (absolute)
    kind: str | None
    bytes: int
    finishing: bool = False  # marked by a prune that was killed


@dataclass
class ArtifactPlan:
    remove: list[ArtifactItem] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)  # reason -> artifacts
    problems: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.remove)


def run_artifacts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's artifacts (run-level, then each step's), in registration order."""
    found = [a for a in doc.get("artifacts") or [] if isinstance(a, dict)]
    for step in doc.get("steps") or []:
        if isinstance(step, dict):
            found += [a for a in step.get("artifacts") or [] if isinstance(a, dict)]
    return [a for a in found if isinstance(a.get("path"), str) and a["path"]]


def locate(artifact: dict[str, Any], doc: dict[str, Any]) -> Path | None:
    """Where an artifact is: its path, or a relative one under the run's working
    directory; every folder above it resolved (see :func:`real_location`)."""
    path = Path(artifact["path"])
    if not path.is_absolute():
        cwd = (doc.get("process") or {}).get("cwd")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            return None
        path = Path(cwd) / path
    return real_location(path)


def real_location(path: Path) -> Path:
    """``path`` with the folders above it resolved (links followed) and the last part
    as it is: paths compare by what they are, not by how they were written (a link
    to the root above an artifact cannot pass for another folder), while an
    artifact that is itself a link is removed as the link."""
    path = Path(os.path.normpath(path))
    if path == Path(path.anchor):
        return path
    return Path(os.path.realpath(path.parent)) / path.name


def plan_artifacts(
    store: RunStore,
    runs: PrunePlan,
    *,
    kinds: tuple[str, ...] = (),
    larger_than: int | None = None,
    keep: frozenset[str] = frozenset(),
) -> ArtifactPlan:
    """Which artifacts of ``runs`` (a prune plan's runs) would go; removes nothing."""
    plan = ArtifactPlan(problems=list(runs.problems))
    chosen = {item.run_id for item in runs.remove}
    protected = _protected_paths(store, chosen)
    root = Path(os.path.realpath(store.root))
    for item in runs.remove:
        try:
            doc = store.load(store.root / item.run_id).doc
        except BadManifestError as exc:
            plan.problems.append(str(exc))
            continue
        artifacts = run_artifacts(doc)
        spared = _spared(artifacts, keep, doc)
        for artifact in artifacts:
            reason, location = _verdict(artifact, doc, item.run_id, root, protected, spared)
            pruned = isinstance(artifact.get("pruned_at"), str)
            if reason is None and not pruned:
                kind = artifact.get("kind")
                if kinds and not any(fnmatch.fnmatchcase(str(kind), k) for k in kinds):
                    reason = "another kind"
            # measured only for what may go: never a walk of a home directory kept anyway
            size = _size(location) if reason is None else 0
            if reason is None and not pruned and larger_than is not None and size <= larger_than:
                reason = "not larger than the size given"
            if pruned and reason == "missing" and location is not None:
                # a removal killed after its rename: finish what it left beside it
                left = leftovers_of(location)
                reason = None if left else "pruned already"
                size = sum(_size(p) for p in left)
            if reason is not None:
                plan.kept[reason] += 1
                continue
            assert location is not None
            plan.remove.append(
                ArtifactItem(
                    item.run_id,
                    artifact["path"],
                    str(location),
                    artifact.get("kind"),
                    size,
                    finishing=pruned,
                )
            )
    return plan


def _size(location: Path | None) -> int:
    """Bytes of a file, or of a directory's tree; a link is not followed (0)."""
    try:
        info = location.lstat() if location is not None else None
    except OSError:
        return 0
    if info is None or stat.S_ISLNK(info.st_mode):
        return 0
    return tree_bytes(location) if stat.S_ISDIR(info.st_mode) else info.st_size  # type: ignore[arg-type]


def _spared(artifacts: list[dict[str, Any]], keep: frozenset[str], doc: dict[str, Any]) -> set[int]:
    """ids of the artifacts ``keep`` spares: the best one, the last checkpoint."""
    spared = set()
    if "best" in keep:
        spared |= {id(a) for a in artifacts if a.get("best") is True}
    if "last" in keep:  # the newest checkpoint on disk (the order in the manifest is
        # run-level first, then by step: not the order they were written in)
        found = []
        for artifact in artifacts:
            location = locate(artifact, doc) if artifact.get("kind") == "checkpoint" else None
            try:
                found.append((location.lstat().st_mtime, id(artifact)))  # type: ignore[union-attr]
            except (AttributeError, OSError):
                continue
        if found:
            spared.add(max(found)[1])
    return spared


def _verdict(
    artifact: dict[str, Any],
    doc: dict[str, Any],
    run_id: str,
    root: Path,
    protected: set[Path],
    spared: set[int],
) -> tuple[str | None, Path | None]:
    """Why the artifact stays (``None``: it may go), and where it is."""
    location = locate(artifact, doc)
    if location is None:
        return "a relative path with no working directory recorded", None
    if id(artifact) in spared:
        return "kept (--keep)", location
    if not os.path.lexists(location):
        return "missing", location
    run_dir = root / run_id
    cwd = (doc.get("process") or {}).get("cwd")
    above = [root, run_dir] + [
        Path(os.path.realpath(p)) for p in [Path.home(), *([cwd] if isinstance(cwd, str) else [])]
    ]
    if location == Path(location.anchor) or any(_within(p, location) for p in above):
        return "the root, a run, home or the working directory, or above them", location
    if _within(location, root) and not _within(location, run_dir):
        return "inside the root but not inside its own run", location
    if any(_within(location, p) or _within(p, location) for p in protected):
        return "another run registered it too", location
    return None, location


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or inside it (by name: the paths are normalized)."""
    return path == folder or folder in path.parents


def _protected_paths(store: RunStore, chosen: set[str]) -> set[Path]:
    """Where the artifacts of every run not chosen are: none of them may go."""
    found: set[Path] = set()
    for name in store.run_dir_names():
        if name in chosen:
            continue
        try:
            doc = store.load(store.root / name).doc
        except BadManifestError as exc:
            raise OtelTrackerError(
                f"{exc}: the artifacts run {name} registered are unknown, so none are "
                "removed (fix or remove that run)"
            ) from None
        for artifact in run_artifacts(doc):
            location = locate(artifact, doc)
            if location is not None and not isinstance(artifact.get("pruned_at"), str):
                found.add(location)
    return found


def carry_out_artifacts(
    store: RunStore, plan: ArtifactPlan, *, now: float
) -> tuple[list[ArtifactItem], list[str]]:
    """Mark, then remove, run by run; what was removed and one line per problem."""
    by_run: dict[str, list[ArtifactItem]] = {}
    for item in plan.remove:
        by_run.setdefault(item.run_id, []).append(item)
    removed: list[ArtifactItem] = []
    problems: list[str] = []
    stamp = iso_utc(int(now * 1e9)) or ""
    for run_id, items in by_run.items():
        run_dir = store.root / run_id
        if lock_is_held(run_dir / LOCK_NAME):
            problems.append(f"{run_id}: running again (its lock is held): its artifacts kept")
            continue
        try:
            _mark(run_dir, items, stamp)
        except (OSError, OtelTrackerError) as exc:
            problems.append(f"{run_id}: {MANIFEST_NAME} not updated ({exc}): nothing removed")
            continue
        failed = []
        for item in items:
            location = Path(item.location)
            if os.path.realpath(location.parent) != str(location.parent):
                # a folder above it became a link since the plan: not followed
                problems.append(f"{run_id}: {item.path}: its folder changed: not removed")
                failed.append(item)
                continue
            for leftover in leftovers_of(location):  # of a removal that was killed
                try:
                    remove_leftover(leftover)
                except OSError as exc:
                    problems.append(f"{leftover}: not removed: {exc}")
            try:
                freed = remove_path(location)
            except FileNotFoundError:
                freed = 0
            except (OSError, OtelTrackerError) as exc:
                problems.append(f"{run_id}: {item.path}: not removed: {exc}")
                failed.append(item)
                continue
            removed.append(ArtifactItem(**{**item.__dict__, "bytes": freed or item.bytes}))
        if failed:
            try:
                _mark(run_dir, failed, None)
            except (OSError, OtelTrackerError) as exc:
                problems.append(f"{run_id}: {MANIFEST_NAME} still marks them pruned ({exc})")
    return removed, problems


def _mark(run_dir: Path, items: list[ArtifactItem], stamp: str | None) -> None:
    """Set (or with ``stamp`` None, clear) ``pruned_at`` on the manifest's entries of
    ``items``; an artifact only a part file lists gets an entry of its own."""
    doc = read_manifest(run_dir)  # the file as written: never the view merged with parts
    entries = run_artifacts(doc)
    for item in items:
        mine = [a for a in entries if a.get("path") == item.path]
        if not mine and stamp is not None:
            entry: dict[str, Any] = {"path": item.path, "kind": item.kind}
            doc.setdefault("artifacts", []).append(entry)
            mine = [entry]
        for entry in mine:
            if stamp is None:
                entry.pop("pruned_at", None)
            elif not isinstance(entry.get("pruned_at"), str):
                entry["pruned_at"] = stamp
                if not isinstance(entry.get("size_bytes"), int) or entry["size_bytes"] <= 0:
                    entry["size_bytes"] = item.bytes
    write_json_atomic(run_dir / MANIFEST_NAME, doc)
