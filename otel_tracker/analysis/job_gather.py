"""Join the shares of a distributed job that hosts recorded under roots of their own.

Without a shared filesystem each host's ranks meet in a run under that host's root:
rank 0's host holds the manifest, every other host a share of rank parts with no
manifest. They share the job's id and attempt (``job.id``, ``job.attempt``), and the
trace id. :func:`gather` copies the shares' files into one run directory, after which
every reader shows the whole job: rank parts and their series
(``parts/rank-*``), each host's telemetry (``hosts/<host>/``), and rank 0's
manifest and telemetry when the destination lacks them. A file is copied when the
destination lacks it or holds an older one; each copy is written under a temporary
name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, read_json
from ..contract.parts import HOSTS_DIR, PARTS_DIR
from ..contract.paths import MANIFEST_NAME, RUN_ID_PATTERN
from ..contract.ranks import RANK_PREFIX, read_rank_parts
from ..contract.telemetry_form import TELEMETRY_NAME
from ..errors import OtelTrackerError


@dataclass
class GatherResult:
    """What :func:`gather` copied (or would copy) from where."""

    destination: Path
    sources: list[Path] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)  # paths relative to the run
    skipped: int = 0  # already there, as new


def job_identity(run_dir: Path) -> tuple[str, int, int] | None:
    """``(job id, attempt, sequence)`` of a run directory (manifest, else a rank
    part): the job, its attempt, and which of the job's runs it is."""
    try:
        doc: Any = read_json(run_dir / MANIFEST_NAME, 64 * 1024 * 1024)
    except FileProblem:
        parts, _ = read_rank_parts(run_dir / PARTS_DIR)
        doc = parts[0] if parts else None
    job = doc.get("job") if isinstance(doc, dict) else None
    if not isinstance(job, dict) or not isinstance(job.get("id"), str):
        return None
    return job["id"], int(job.get("attempt") or 1), int(job.get("sequence") or 1)


def find_shares(source: Path, identity: tuple[str, int, int], exclude: Path) -> list[Path]:
    """The run directories of the job under ``source``: itself if it is one, else
    the runs of the root it is."""
    if (source / MANIFEST_NAME).exists() or (source / PARTS_DIR).is_dir():
        candidates = [source]
    else:
        try:
            candidates = [
                Path(e.path)
                for e in os.scandir(source)
                if RUN_ID_PATTERN.match(e.name) and e.is_dir(follow_symlinks=False)
            ]
        except OSError as exc:
            raise OtelTrackerError(f"cannot read {source}: {exc.strerror or exc}") from None
    found = []
    for run_dir in candidates:
        if run_dir.resolve() == exclude.resolve():
            continue
        if job_identity(run_dir) == identity:
            found.append(run_dir)
    return found


def _files_of(share: Path, destination: Path) -> list[Path]:
    """The share's files a job's run takes, relative to the run directory."""
    names: list[Path] = []
    parts = share / PARTS_DIR
    if parts.is_dir():
        names += [
            Path(PARTS_DIR) / p.name
            for p in sorted(parts.iterdir())
            if p.name.startswith(RANK_PREFIX) and p.is_file() and not p.is_symlink()
        ]
    hosts = share / HOSTS_DIR
    if hosts.is_dir():
        for path in sorted(hosts.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                names.append(path.relative_to(share))
    if (share / MANIFEST_NAME).is_file() and not (destination / MANIFEST_NAME).exists():
        # rank 0's run: its manifest, and its host's telemetry and series beside it
        names.append(Path(MANIFEST_NAME))
        names += [
            Path(p.name)
            for p in sorted(share.iterdir())
            if (p.name.startswith(TELEMETRY_NAME.split(".")[0]) or p.name == "metrics.jsonl")
            and p.is_file()
            and not p.is_symlink()
        ]
    return names


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.gather.tmp")
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def gather(destination: Path, sources: list[Path], *, dry_run: bool = False) -> GatherResult:
    """Copy the job's shares found under ``sources`` (run directories or roots) into
    the run ``destination``; raises :class:`OtelTrackerError` when it is no job's run
    or no share of its job is found."""
    identity = job_identity(destination)
    if identity is None:
        raise OtelTrackerError(f"{destination} is not a distributed job's run (no job section)")
    result = GatherResult(destination)
    for source in sources:
        shares = find_shares(source, identity, destination)
        if not shares:
            raise OtelTrackerError(
                f"no run of job {identity[0]} attempt {identity[1]} (its run "
                f"{identity[2]}) under {source}"
            )
        result.sources += shares
        for share in shares:
            for name in _files_of(share, destination):
                src, dst = share / name, destination / name
                try:
                    newer = not dst.exists() or src.stat().st_mtime > dst.stat().st_mtime
                except OSError:
                    newer = True
                if not newer:
                    result.skipped += 1
                    continue
                if not dry_run:
                    try:
                        _copy(src, dst)
                    except OSError as exc:
                        raise OtelTrackerError(f"cannot copy {src} to {dst}: {exc}") from None
                result.copied.append(str(name))
    return result
