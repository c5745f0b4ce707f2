"""Run ids, slugs and the exclusive creation of run directories."""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from ..errors import OtelTrackerError

_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
MAX_SLUG = 40
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
# <root>/.jobs/<digest>.json: the run id every rank of a distributed job takes
# (record/job_rendezvous.py writes them; prune forgets those of removed runs)
JOBS_DIR = ".jobs"
# Put by launchers into a child's environment (with TRACEPARENT): the run it joins.
RUN_DIR_ENV = "OTEL_TRACKER_RUN_DIR"

# A run id: UTC timestamp to the millisecond (fixed width, so ids sort by start
# time), the name's slug, and a random suffix that makes it unique.
RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[a-z0-9-]{1,40}-[0-9a-f]{6}$")


def slugify(name: str, default: str = "run") -> str:
    """Lower-case ASCII letters, digits and single dashes; never empty, never a path."""
    # only a name's start can reach the slug: read more of it only while it yields too
    # little, so a 50 MB name costs what a short one does (and gives the same slug)
    size = 4 * MAX_SLUG
    while True:
        ascii_name = unicodedata.normalize("NFKD", name[:size]).encode("ascii", "ignore").decode()
        slug = _SLUG_CHARS.sub("-", ascii_name.lower()).lstrip("-")
        if len(slug) > MAX_SLUG + 2 or size >= len(name):
            break
        size *= 4
    return slug[:MAX_SLUG].strip("-") or default


def new_run_id(name: str, now: datetime | None = None) -> str:
    """A unique, sortable run id such as ``20261123T213700.123Z-imitation-pipeline-3f9a2c``."""
    now = now or datetime.now(timezone.utc)
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    millis = now.microsecond // 1000
    return f"{stamp}.{millis:03d}Z-{slugify(name)}-{secrets.token_hex(3)}"


def create_run_dir(root: Path, name: str, attempts: int = 20) -> tuple[str, Path]:
    """Create ``<root>/<run_id>/`` exclusively and return ``(run_id, path)``.

    ``mkdir`` fails if the directory exists, so two processes can never share
    one; a collision just draws another suffix.
    """
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        run_id = new_run_id(name)
        path = root / run_id
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return run_id, path
    raise OtelTrackerError(f"could not create a unique run directory under {root}")


def outermost(paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` inside none of the others, in their order (a tool that walks
    a directory sees the ones inside it through it)."""
    given = list(dict.fromkeys(paths))
    return [p for p in given if not any(p != q and p.is_relative_to(q) for q in given)]
