"""Which runs a prune removes, and which it must never touch.

A run is removed only when all of these hold: it matches the selection (name,
scenario, status), it is not among the newest ``keep_last`` runs of its pipeline
and scenario, it is older than ``older_than`` (when given), and it is not
protected. Protected, whatever the policy says:

* a run that is running or stuck (its lock is held, or its heartbeat is fresh on
  another host), and any run whose status cannot be read;
* a run a baseline lists among its source runs (unless ``include_baselines``); a
  baseline that cannot be read protects everything (its sources are unknown);
* the newest completed run of each pipeline.

:func:`plan_prune` only reads; :func:`carry_out` removes, each run through
:func:`~otel_tracker.contract.removal.remove_run_dir` (out of the listing first).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, read_json
from ..contract.liveness import lock_is_held
from ..contract.paths import JOBS_DIR, LOCK_NAME
from ..contract.removal import empty_trash, remove_run_dir, tree_bytes
from ..errors import OtelTrackerError
from ..history.manifest_head import manifest_head
from ..history.store import STATUSES, BadManifestError, RunStore
from ..timeparse import format_duration, parse_duration, parse_timestamp
from .baseline import BaselineStore

DEFAULT_KEEP_LAST = 20
LIVE = frozenset({"running", "stuck"})


@dataclass(frozen=True)
class RetentionPolicy:
    """What to remove; see the module's docstring for what is never removed."""

    keep_last: int = DEFAULT_KEEP_LAST
    older_than_s: float | None = None
    statuses: frozenset[str] = frozenset()
    name: str | None = None
    scenario: str | None = None
    include_baselines: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.keep_last, int) or self.keep_last < 0:
            raise ValueError(f"keep_last must be a whole number >= 0, got {self.keep_last!r}")
        if self.older_than_s is not None and not self.older_than_s > 0:
            raise ValueError(f"older_than must be positive seconds, got {self.older_than_s!r}")
        unknown = sorted(set(self.statuses) - set(STATUSES))
        if unknown:
            raise ValueError(
                f"unknown status {', '.join(unknown)}; choose from {', '.join(STATUSES)}"
            )

    @classmethod
    def parse(cls, text: str) -> RetentionPolicy:
        """``keep-last=50,older-than=90d`` (also ``status=failed|aborted``, ``name=``,
        ``scenario=``); raises ``ValueError`` with what is wrong."""
        fields: dict[str, Any] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            key, value = key.strip().lower().replace("_", "-"), value.strip()
            if not sep or not value:
                raise ValueError(f"retention {part!r}: expected KEY=VALUE")
            if key == "keep-last":
                if not value.isdigit():
                    raise ValueError(f"retention keep-last={value!r}: a whole number")
                fields["keep_last"] = int(value)
            elif key == "older-than":
                try:
                    fields["older_than_s"] = parse_duration(value)
                except OtelTrackerError as exc:
                    raise ValueError(f"retention older-than={value!r}: {exc}") from None
            elif key == "status":
                fields["statuses"] = frozenset(s.strip() for s in value.split("|") if s.strip())
            elif key in ("name", "scenario"):
                fields[key] = value
            else:
                raise ValueError(
                    f"retention {key!r}: expected keep-last, older-than, status, name or scenario"
                )
        return cls(**fields)

    def describe(self) -> str:
        parts = [f"keep the last {self.keep_last} per pipeline and scenario"]
        if self.older_than_s is not None:
            parts.append(f"older than {format_duration(self.older_than_s)}")
        if self.statuses:
            parts.append("status " + "|".join(sorted(self.statuses)))
        if self.name:
            parts.append(f"name {self.name}")
        if self.scenario:
            parts.append(f"scenario {self.scenario}")
        return ", ".join(parts)


@dataclass(frozen=True)
class PruneItem:
    run_id: str
    name: str
    scenario: str | None
    status: str
    started_at: str | None
    bytes: int


@dataclass
class PrunePlan:
    """What a prune would remove, and why the rest stays."""

    remove: list[PruneItem] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # reason -> how many runs
    problems: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.remove)

    def _keep(self, reason: str) -> None:
        self.kept[reason] = self.kept.get(reason, 0) + 1


def baseline_sources(root: Any) -> set[str]:
    """The run ids every baseline of ``root`` was made from; raises when a baseline
    cannot be read (its sources would be unknown, so nothing may be pruned)."""
    sources: set[str] = set()
    for key, found in BaselineStore.under(root).all():
        if isinstance(found, OtelTrackerError):
            raise OtelTrackerError(
                f"baseline {key} cannot be read ({found}); its source runs are unknown, so "
                "nothing is pruned (fix or remove it, or pass --include-baselines)"
            )
        for record in found.get("source_runs", []):
            if isinstance(record, dict) and isinstance(record.get("run_id"), str):
                sources.add(record["run_id"])
    return sources


@dataclass(frozen=True)
class _Seen:
    """What the plan needs of one run."""

    run_id: str
    name: str
    scenario: str | None
    status: str
    started_at: str | None


def _runs(store: RunStore, plan: PrunePlan) -> Iterable[_Seen]:
    """Every run of the root, newest first: a finished one from its manifest's first
    fields (:mod:`~otel_tracker.history.manifest_head`), any other read in full with
    its liveness inferred. One that cannot be read is kept, with a problem line."""
    for dir_name in store.run_dir_names():
        path = store.root / dir_name
        head = manifest_head(path)
        if head is not None:
            yield _Seen(head.run_id, head.name, head.scenario, head.status, head.started_at)
            continue
        try:
            view = store.load(path)
        except BadManifestError as exc:
            if not exc.missing:  # missing: a run being created
                plan.problems.append(str(exc))
                plan._keep("unreadable")
            continue
        doc = view.doc
        scenario = doc.get("scenario") if isinstance(doc.get("scenario"), str) else None
        started_at = doc.get("started_at") if isinstance(doc.get("started_at"), str) else None
        yield _Seen(view.run_id, str(doc.get("name")), scenario, view.status, started_at)


def plan_prune(store: RunStore, policy: RetentionPolicy, *, now: float | None = None) -> PrunePlan:
    """Read the root and decide; removes nothing."""
    now = time.time() if now is None else now
    protected = set() if policy.include_baselines else baseline_sources(store.root)
    plan = PrunePlan()
    seen: dict[tuple[str, str | None], int] = defaultdict(int)
    newest_completed: set[str] = set()
    for run in _runs(store, plan):
        rank = seen[(run.name, run.scenario)]
        seen[(run.name, run.scenario)] += 1
        reason = _kept_because(run, rank, policy, protected, newest_completed, now)
        if run.status == "completed":
            newest_completed.add(run.name)
        if reason is not None:
            plan._keep(reason)
            continue
        plan.remove.append(
            PruneItem(
                run_id=run.run_id,
                name=run.name,
                scenario=run.scenario,
                status=run.status,
                started_at=run.started_at,
                bytes=tree_bytes(store.root / run.run_id),
            )
        )
    plan.problems += [p for p in store.problems if p not in plan.problems]
    return plan


def _kept_because(
    run: _Seen,
    rank: int,
    policy: RetentionPolicy,
    baseline_runs: set[str],
    newest_completed: set[str],
    now: float,
) -> str | None:
    """Why ``run`` stays, or ``None`` when the policy removes it."""
    if run.status in LIVE or run.status not in STATUSES:
        return "running"
    if run.run_id in baseline_runs:
        return "a baseline's source"
    if run.status == "completed" and run.name not in newest_completed:
        return "the newest completed run of its pipeline"
    if not _selected(run, policy):
        return "not selected"
    if rank < policy.keep_last:
        return f"among the last {policy.keep_last}"
    started = parse_timestamp(run.started_at)
    if policy.older_than_s is not None and (started is None or now - started < policy.older_than_s):
        return f"newer than {format_duration(policy.older_than_s)}"
    return None


def _selected(run: _Seen, policy: RetentionPolicy) -> bool:
    if policy.statuses and run.status not in policy.statuses:
        return False
    if policy.name is not None and not fnmatch.fnmatchcase(run.name, policy.name):
        return False
    return policy.scenario is None or fnmatch.fnmatchcase(str(run.scenario), policy.scenario)


def carry_out(
    store: RunStore,
    plan: PrunePlan,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[list[PruneItem], list[str]]:
    """Remove the plan's runs, each only if it is still not running; the removed
    and one problem line per run left. ``progress(done, total, bytes)`` after each."""
    root = store.root
    empty_trash(root)  # what an earlier, killed prune left
    removed: list[PruneItem] = []
    problems: list[str] = []
    for done, item in enumerate(plan.remove, 1):
        if lock_is_held(root / item.run_id / LOCK_NAME):
            problems.append(f"{item.run_id}: running again (its lock is held): kept")
            continue
        try:
            freed = remove_run_dir(root, item.run_id)
        except (OSError, OtelTrackerError) as exc:
            problems.append(f"{item.run_id}: not removed: {exc}")
            continue
        if freed is None:
            continue  # another prune (a retention running beside this one) took it
        removed.append(PruneItem(**{**item.__dict__, "bytes": freed}))
        if progress is not None:
            progress(done, len(plan.remove), sum(r.bytes for r in removed))
    forget_jobs(root, {r.run_id for r in removed})
    return removed, problems


def forget_jobs(root: Path, run_ids: set[str]) -> None:
    """Remove the rendezvous files (``.jobs/``) of distributed jobs whose runs were
    removed: a job id used again later then starts afresh, and none pile up."""
    if not run_ids:
        return
    try:
        entries = list(os.scandir(root / JOBS_DIR))
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(".json") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            doc = read_json(Path(entry.path), 64 * 1024)
        except FileProblem:
            continue
        if isinstance(doc, dict) and doc.get("run_id") in run_ids:
            try:
                os.unlink(entry.path)
            except OSError:
                pass  # another prune took it
