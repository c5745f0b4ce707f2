"""One run id for every rank of a job, without the ranks talking to each other.

A run id starts with its start time, and no launcher gives the ranks one they all
share. So the first rank of a job to get to the runs root picks the run id, writes
it to ``<root>/.jobs/<digest>.json`` under a temporary name and ``link()``s that
into place: atomic, and it fails if the name exists. Every later rank's ``link()``
fails; it reads the file and takes that run id. No rank waits for another to start,
only for one round trip to the filesystem, and rank 0 may come last.

A job id can come back: a user runs ``torchrun --rdzv-id=exp1`` again, SLURM's ids
restart after a reset. A rank of this job cannot have reached the rendezvous long
before this process was started (launchers start the ranks together), nor can this
job's run have ended before it started. A file that was made more than
:data:`SAME_JOB_SKEW_S` before this process started, or whose run ended before it, is
an earlier job's: the ranks move on to ``<digest>.2.json``, and so on, and all meet in
the first one that is theirs.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, read_json
from ..contract.paths import JOBS_DIR, MANIFEST_NAME, RUN_ID_PATTERN, new_run_id
from ..timeparse import parse_timestamp
from .job import JobIdentity

MAX_GENERATIONS = 50
# How much later than the first rank of a job the last may be started (clocks of
# hosts included): launchers start them together, within seconds
SAME_JOB_SKEW_S = 60.0
_READ_RETRIES = 40  # a file made without link() may be read half-written: 2 s of retries


def job_run(
    root: Path,
    name: str,
    job: JobIdentity,
    *,
    started: float | None = None,
    now: Callable[[], float] = time.time,
) -> tuple[str, Path]:
    """The job's ``(run_id, run directory)`` under ``root``, created if this rank is
    the first; raises ``OSError`` when the root is unusable. ``started``: when this
    process started (Unix seconds; read from the system if not given)."""
    if started is None:
        started = process_started()
    jobs = root / JOBS_DIR
    jobs.mkdir(parents=True, exist_ok=True)
    for generation in range(1, MAX_GENERATIONS + 1):
        suffix = "" if generation == 1 else f".{generation}"
        path = jobs / f"{job.digest}{suffix}.json"
        entry = _read(path) if path.exists() else None
        mine = False
        if entry is None:
            entry, mine = _claim(path, name, job, now())
        run_id = entry["run_id"]
        # the one this rank made is its job's, whatever another host's clock says
        if not mine and _earlier_job(root / run_id, entry, started):
            continue
        run_dir = root / run_id
        run_dir.mkdir(exist_ok=True)
        return run_id, run_dir
    raise OSError(
        f"{jobs}: more than {MAX_GENERATIONS} runs of job {job.key!r} attempt {job.attempt}"
    )


def _claim(path: Path, name: str, job: JobIdentity, at: float) -> tuple[dict[str, Any], bool]:
    """Write our run id into ``path`` unless a rank did first; the entry that won, and
    whether it is ours."""
    entry = {
        "run_id": new_run_id(name),
        "job": job.key,
        "attempt": job.attempt,
        "world_size": job.world_size,
        "created_at": at,
        "created_by_rank": job.rank,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(entry, out)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
            return entry, True
        except FileExistsError:
            pass
        except OSError:
            # a filesystem without hard links: an exclusive create, written in place
            # (readers retry a half-written file, see _read)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    json.dump(entry, out)
                return entry, True
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    found = _read(path)
    if found is None:
        raise OSError(f"{path}: another rank's run id cannot be read")
    return found, False


def _read(path: Path) -> dict[str, Any] | None:
    for _ in range(_READ_RETRIES):
        try:
            doc = read_json(path, 64 * 1024)
        except FileProblem:
            doc = None
        if (
            isinstance(doc, dict)
            and isinstance(doc.get("run_id"), str)
            and RUN_ID_PATTERN.match(doc["run_id"])
        ):
            return doc
        time.sleep(0.05)
    return None


def _earlier_job(run_dir: Path, entry: dict[str, Any], started: float) -> bool:
    """Whether the rendezvous belongs to an earlier job with the same identity."""
    created = entry.get("created_at")
    if isinstance(created, (int, float)) and created < started - SAME_JOB_SKEW_S:
        return True
    try:
        doc = read_json(run_dir / MANIFEST_NAME, 64 * 1024 * 1024)
    except FileProblem:
        return False  # rank 0 has not written yet
    if not isinstance(doc, dict) or doc.get("status") == "running":
        return False
    ended = parse_timestamp(doc.get("ended_at"))
    return ended is not None and ended < started - 1.0


def process_started() -> float:
    """When this process started, by the system's clock (now, if it cannot say)."""
    try:
        import psutil

        return float(psutil.Process(os.getpid()).create_time())
    except Exception:  # psutil missing or /proc unreadable: every rendezvous is ours
        return time.time()
