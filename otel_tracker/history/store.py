"""``RunStore``: find, load, filter and recover runs from ``<root>/*/manifest.json``.

The reading side never imports the OpenTelemetry SDK. Run directories are named
by run id, which sorts by start time, so "the newest N" reads N manifests, not
all of them; ``--since``/``--until`` prune by the id's timestamp too.
Bad files never break a listing: each is reported once in :attr:`RunStore.problems`.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..clock import iso_utc
from ..config import ReaderConfig
from ..contract.document import (
    PLAIN_SCHEMA_VERSION,
    RUN_STATUSES,
    SCHEMA_VERSION,
    STEP_STATUSES,
)
from ..contract.jsonfile import FileProblem, read_bytes, read_json
from ..contract.liveness import lock_is_held
from ..contract.parts import merge_run_parts
from ..contract.paths import LOCK_NAME, MANIFEST_NAME, RUN_ID_PATTERN, slugify
from ..contract.run_status import Inference, infer_status, pid_start_time, run_time_now
from ..contract.shape import MAX_STEPS, type_problem
from ..errors import OtelTrackerError, RunNotFoundError
from ..timeparse import parse_timestamp
from ..values import is_real, is_whole
from .job_view import host_share, job_counts, merge_job_ranks
from .telemetry_tail import TELEMETRY_NAME, rebuild_step_resources

STATUSES = (*RUN_STATUSES, "aborted", "stuck")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# A run directory gets its manifest a few ms after mkdir; don't call that broken.
NEW_DIR_GRACE_S = 60.0


class BadManifestError(FileProblem):
    """A manifest that cannot be read as a run."""


@dataclass
class RunView:
    """One run as a reader sees it: the manifest plus its inferred status."""

    path: Path
    doc: dict[str, Any]
    inference: Inference
    outdated: bool = False
    without_manifest: bool = False  # its process died during start-up, before writing one
    # the reader's now on the run's own clock (see inference.run_time_now)
    run_now: float | None = None

    @property
    def run_id(self) -> str:
        return str(self.doc["run_id"])

    @property
    def status(self) -> str:
        return self.inference.status

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def started(self) -> float | None:
        return parse_timestamp(self.doc.get("started_at"))

    def summary(self) -> dict[str, Any]:
        """The row ``list --json`` prints."""
        d = self.doc
        return {
            "run_id": self.run_id,
            "name": d.get("name"),
            "scenario": d.get("scenario"),
            "kind": d.get("kind"),
            "status": self.status,
            "recorded_status": d.get("status"),
            "status_reason": self.inference.reason,
            "started_at": d.get("started_at"),
            "ended_at": d.get("ended_at"),
            "duration_s": d.get("duration_s"),
            "elapsed_s": d.get("elapsed_s"),
            "steps_completed": d.get("steps_completed"),
            "steps_enabled": d.get("steps_enabled"),
            "last_completed_step": d.get("last_completed_step"),
            "current_step": d.get("current_step") if self.status in ("running", "stuck") else None,
            "outdated": self.outdated,
            "run_dir": str(self.path),
            "job": job_counts(d),
        }


def check_manifest(doc: Any) -> str | None:
    """Why ``doc`` is not a usable manifest, or ``None`` if it is."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return "no integer schema_version"
    if version > SCHEMA_VERSION:
        return f"schema_version {version} is newer than this otel-tracker understands ({SCHEMA_VERSION}); upgrade it"
    for key in ("run_id", "name"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            return f"field {key!r} is missing or not a string"
    if doc.get("status") not in (*RUN_STATUSES, "aborted"):
        return f"unknown status {doc.get('status')!r}"
    steps = doc.get("steps")
    if not isinstance(steps, list):
        return "field 'steps' is not a list"
    if len(steps) > MAX_STEPS:
        return f"{len(steps):,} steps, more than the {MAX_STEPS:,} readers accept"
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("name"), str):
            return "a step is not an object with a name"
        if not is_whole(step.get("index")):
            return f"step {step['name']!r} has no integer index"
        if step.get("status") not in STEP_STATUSES:
            return f"step {step.get('name')!r} has unknown status {step.get('status')!r}"
        if not isinstance(step.get("progress", {}), dict):
            return f"step {step.get('name')!r} has a malformed progress"
    for key in ("params", "process", "tracker"):
        if not isinstance(doc.get(key, {}), dict):
            return f"field {key!r} is not an object"
    for key in ("steps_completed", "steps_enabled"):
        if not isinstance(doc.get(key, 0), int):
            return f"field {key!r} is not an integer"
    # what a listing shows of every run (``RunStore.get`` checks the whole document)
    for key in ("duration_s", "elapsed_s"):
        if doc.get(key) is not None and not is_real(doc[key]):
            return f"field {key!r} is not a number"
    for key in (
        "scenario",
        "kind",
        "started_at",
        "ended_at",
        "heartbeat_at",
        "last_completed_step",
    ):
        if not isinstance(doc.get(key), (str, type(None))):
            return f"field {key!r} is not a string"
    return None


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Load and check ``run_dir/manifest.json`` (a regular file, symlinks not followed,
    at most :data:`MAX_MANIFEST_BYTES`, numbers in bounds: :mod:`otel_tracker.contract.jsonfile`)."""
    path = run_dir / MANIFEST_NAME
    try:
        doc = read_json(path, MAX_MANIFEST_BYTES)
    except FileProblem as exc:
        if exc.missing:
            raise BadManifestError(f"{run_dir}: no {MANIFEST_NAME}", missing=True) from None
        raise BadManifestError(str(exc)) from None
    problem = check_manifest(doc)
    if problem:
        raise BadManifestError(f"{path}: {problem}")
    if doc["run_id"] != run_dir.name:
        raise BadManifestError(f"{path}: run_id {doc['run_id']!r} does not match its directory")
    return doc


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _id_time(name: str) -> float | None:
    try:
        return (
            datetime.strptime(name[:19], "%Y%m%dT%H%M%S.%f")
            .replace(tzinfo=timezone.utc)
            .timestamp()
        )
    except ValueError:
        return None


@dataclass
class Filters:
    """What ``list`` keeps; every field optional."""

    statuses: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None
    name: str | None = None
    scenario: str | None = None
    outdated: bool | None = None
    exact: bool = False  # name/scenario compared literally (no wildcards; None scenario = none)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.statuses) - set(STATUSES))
        if unknown:
            raise OtelTrackerError(
                f"unknown status {', '.join(unknown)}; choose from {', '.join(STATUSES)}"
            )

    def keep(self, view: RunView) -> bool:
        doc = view.doc
        if self.statuses and view.status not in self.statuses:
            return False
        started = view.started or _id_time(view.run_id)
        if self.since is not None and (started is None or started < self.since):
            return False
        if self.until is not None and (started is None or started > self.until):
            return False
        if not self._names_match(doc):
            return False
        return self.outdated is None or view.outdated == self.outdated

    def _names_match(self, doc: dict[str, Any]) -> bool:
        if self.exact:
            # literal: a name holding "*" or "[" is no pattern, and a huge one costs no regex
            return (self.name is None or doc.get("name") == self.name) and doc.get(
                "scenario"
            ) == self.scenario
        return all(
            pattern is None or fnmatch.fnmatchcase(str(doc.get(key)), pattern)
            for key, pattern in (("name", self.name), ("scenario", self.scenario))
        )


@dataclass
class RunStore:
    """The runs under one root. Everything external (clock, host, pid probe) is injectable."""

    config: ReaderConfig = field(default_factory=ReaderConfig.resolve)
    now: Callable[[], float] = time.time
    host: str = field(default_factory=socket.gethostname)
    pid_probe: Callable[[int], float | bool | None] = pid_start_time
    problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, **settings: Any) -> RunStore:
        """A store for ``root`` (argument > ``OTEL_TRACKER_ROOT`` > default)."""
        return cls(config=ReaderConfig.resolve(root=root, **settings))

    @property
    def root(self) -> Path:
        return self.config.root

    # -- discovery -------------------------------------------------------------------
    def run_dir_names(self) -> list[str]:
        """Run directory names, newest first; anything else under the root is ignored."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OtelTrackerError(
                f"cannot read runs root {self.root}: {exc.strerror or exc}"
            ) from None
        names = []
        for entry in entries:
            if not RUN_ID_PATTERN.match(entry.name):
                continue  # temp files, baselines, user files: not runs
            if entry.is_symlink():
                self._problem(
                    f"{entry.path}: symbolic link, not read (runs must live inside the root)"
                )
                continue
            if entry.is_dir(follow_symlinks=False):
                names.append(entry.name)
        names.sort(reverse=True)
        return names

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def load(self, run_dir: Path) -> RunView:
        """One run, with its inferred status; raises :class:`BadManifestError`
        (``missing`` for a run still being created)."""
        lock_dir = run_dir
        try:
            doc = read_manifest(run_dir)
        except BadManifestError as exc:
            if not exc.missing:
                raise
            # a host of a job without a shared filesystem: its ranks, no rank 0
            share = host_share(run_dir)
            if share is None:
                return self._without_manifest(run_dir)
            doc, lock_dir = share
        now = self.now()
        # what every liveness judgement here goes by: this host, the limits, the probe
        evidence: dict[str, Any] = {
            "host": self.host,
            "stale_after": self.config.stale_after,
            "stuck_after": self.config.stuck_after,
            "pid_probe": self.pid_probe,
        }
        for problem in merge_run_parts(doc, run_dir, now=now, **evidence):
            self._problem(problem)
        written = _modified(run_dir / MANIFEST_NAME) if doc.get("status") == "running" else None
        run_now = run_time_now(doc, now, written)
        inference = infer_status(doc, lock_dir, now=run_now, **evidence)
        inference, problems = merge_job_ranks(doc, run_dir, inference, now=now, **evidence)
        for problem in problems:
            self._problem(problem)
        ended = parse_timestamp(doc.get("ended_at")) or parse_timestamp(doc.get("heartbeat_at"))
        outdated = (
            inference.status not in ("running", "stuck")
            and ended is not None
            and now - ended > self.config.outdated_after
        )
        return RunView(run_dir, doc, inference, outdated, run_now=run_now)

    def iter_runs(self, filters: Filters | None = None) -> Iterator[RunView]:
        """Matching runs, newest first, read lazily; bad ones go to :attr:`problems`."""
        filters = filters or Filters()
        # a run id carries its name's slug: skip other pipelines without reading them
        slug = (
            slugify(filters.name)
            if filters.name is not None
            and (filters.exact or not any(c in filters.name for c in "*?["))
            else None
        )
        for name in self.run_dir_names():
            if slug is not None and name[21:-7] != slug:
                continue
            id_time = _id_time(name)
            if filters.since is not None and id_time is not None and id_time < filters.since - 1:
                break  # ids sort by start time: everything after this is older
            if filters.until is not None and id_time is not None and id_time > filters.until + 1:
                continue
            path = self.root / name
            try:
                view = self.load(path)
            except BadManifestError as exc:
                if not exc.missing:  # missing: being created, not a problem
                    self._problem(str(exc))
                continue
            if filters.keep(view):
                yield view

    def _without_manifest(self, run_dir: Path) -> RunView:
        """A run directory without a manifest: one being created (raises ``missing``),
        or a run whose process died during start-up, shown as ``aborted``.

        The run lock decides: held, the process lives and is starting; free, with its
        pid written into it, the process is gone. With no lock to ask (it died before
        taking it), only the directory's age tells, after :data:`NEW_DIR_GRACE_S`.
        """
        lock = run_dir / LOCK_NAME
        held = lock_is_held(lock)
        try:
            pid_text = read_bytes(lock, 64).decode("ascii").strip() if held is False else ""
        except (FileProblem, UnicodeDecodeError):
            pid_text = ""
        if held is True or (not pid_text.isdigit() and self._is_new_dir(run_dir)):
            raise BadManifestError(
                f"{run_dir}: no {MANIFEST_NAME} yet (the run is starting)", missing=True
            )
        who = f"process {pid_text}" if pid_text.isdigit() else "its process"
        reason = f"{who} ended during start-up, before it wrote {MANIFEST_NAME}"
        started = _id_time(run_dir.name)
        doc: dict[str, Any] = {
            "schema_version": PLAIN_SCHEMA_VERSION,
            "run_id": run_dir.name,
            "name": run_dir.name[21:-7],  # the name's slug: all that is known of it
            "scenario": None,
            "kind": None,
            "status": "running",
            "started_at": None if started is None else iso_utc(int(started * 1e9)),
            "steps_completed": 0,
            "steps_enabled": 0,
            "steps": [],
            "warnings": [f"no {MANIFEST_NAME}: {reason}; only the run id is known"],
        }
        return RunView(run_dir, doc, Inference("aborted", reason, False), without_manifest=True)

    def _is_new_dir(self, path: Path) -> bool:
        # decided by age alone: re-checking for the manifest would race its first write
        try:
            return self.now() - path.stat().st_mtime < NEW_DIR_GRACE_S
        except OSError:
            return True  # removed meanwhile: nothing to report

    def list(self, filters: Filters | None = None, limit: int | None = 20) -> list[RunView]:
        """Up to ``limit`` matching runs, newest first (``None``: all)."""
        if limit is not None and limit < 1:
            raise OtelTrackerError("--limit must be at least 1")
        found: list[RunView] = []
        for view in self.iter_runs(filters):
            found.append(view)
            if limit is not None and len(found) >= limit:
                break
        return found

    # -- one run ---------------------------------------------------------------------
    def resolve(self, ref: str) -> Path:
        """The run directory for a full id, a unique prefix, ``latest``, or a run directory path."""
        ref = ref.strip()
        if not ref:
            raise RunNotFoundError("empty run reference")
        if ref == "latest":
            return self._latest().path
        if os.sep in ref or ref.startswith("."):
            path = Path(ref)
            if (path / MANIFEST_NAME).is_file():
                return path
            raise RunNotFoundError(f"{ref} is not a run directory (no {MANIFEST_NAME})")
        names = self.run_dir_names()
        if ref in names:
            return self.root / ref
        matches = [n for n in names if n.startswith(ref)]
        if not matches:
            raise RunNotFoundError(f"no run matches {ref!r} under {self.root}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise RunNotFoundError(f"{ref!r} is ambiguous: {len(matches)} runs match ({shown})")
        return self.root / matches[0]

    def _latest(self) -> RunView:
        for view in self.iter_runs():
            return view
        raise RunNotFoundError(f"no runs under {self.root}")

    def get(self, ref: str) -> RunView:
        """The run ``ref`` names, every field of the type its readers expect; raises a
        clear :class:`OtelTrackerError` otherwise."""
        view = self._latest() if ref.strip() == "latest" else self.load(self.resolve(ref))
        problem = type_problem(view.doc)
        if problem:
            raise BadManifestError(f"{view.manifest_path}: {problem}")
        if view.status == "aborted" and not view.without_manifest:
            for name in rebuild_step_resources(view.doc, view.path):
                view.doc["warnings"] = [
                    *view.doc.get("warnings", []),
                    f"step {name!r} never ended: its resource figures are rebuilt "
                    f"from {TELEMETRY_NAME}",
                ]
        return view

    def recover(self, ref: str) -> RunView:
        """Finalize a dead run's manifest on disk as ``aborted`` (see
        :func:`otel_tracker.history.recovery.recover`)."""
        from .recovery import recover

        return recover(self, ref)
