"""Part files: what child processes that joined a run recorded, merged into its view.

A process started by ``otel-tracker run`` or ``pipeline run`` (or any launcher
that puts ``TRACEPARENT`` and ``OTEL_TRACKER_RUN_DIR`` in its environment) and
calls ``track_run`` itself does not create a run of its own: it writes
``<run>/parts/<part id>.json``, a manifest of the same schema with a ``part``
section naming the span it nests under. Each process writes only its own file
(no cross-process locking, no lost updates); readers, and the parent at each of
its writes, merge the parts into the run's document:

* each part's steps become ``substeps`` of the step whose span launched it (a
  part launched from another part's step nests under that one);
* ``parts`` lists every part with its process, status and error.

Merging is idempotent: ``substeps`` and ``parts`` are rebuilt from the part
files whenever there are any, so a manifest that already embeds them (the
parent's own final write) reads the same. Nothing here imports the OTel SDK.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .jsonfile import FileProblem, read_json
from .ranks import is_rank_part_file
from .series import merged_summary
from .shape import MAX_STEPS
from .user_metrics import merge_user_metrics

PARTS_DIR = "parts"
HOSTS_DIR = "hosts"  # a distributed job's telemetry of each host but rank 0's
MAX_PART_BYTES = 16 * 1024 * 1024


def host_dir_name(host: str) -> str:
    """A host's folder under ``hosts/``: its name, made safe as one path component."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host).strip(".")
    return safe[:100] or "host"


def part_files(run_dir: Path) -> list[Path]:
    """The part files of a run, oldest part id first (ids start with a timestamp)."""
    try:
        entries = os.scandir(run_dir / PARTS_DIR)
    except OSError:
        return []
    with entries:
        return sorted(
            Path(e.path)
            for e in entries
            if e.name.endswith(".json")
            and not e.name.startswith(".")
            # a job's ranks are merged by readers only (ranks.py): 4,096 of them must
            # not be read at each of rank 0's writes
            and not is_rank_part_file(e.name)
            and e.is_file()
        )


def read_parts(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The parts that parse as objects with steps, and one problem line per other file.

    Bounded like a manifest: regular files only, at most :data:`MAX_PART_BYTES`
    each and :data:`~otel_tracker.contract.shape.MAX_STEPS` steps in all.
    """
    parts: list[dict[str, Any]] = []
    problems: list[str] = []
    steps = 0
    for path in part_files(run_dir):
        try:
            doc = read_json(path, MAX_PART_BYTES)
        except FileProblem as exc:
            problems.append(f"{exc}; part not merged")
            continue
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("part"), dict)
            or not isinstance(doc.get("steps"), list)
            or not all(isinstance(s, dict) for s in doc["steps"])
        ):
            problems.append(f"{path}: not a part file (no 'part' section or steps)")
            continue
        steps += len(doc["steps"])
        if steps > MAX_STEPS:
            problems.append(f"{path}: not read: the run's parts hold more than {MAX_STEPS:,} steps")
            break
        parts.append(doc)
    return parts, problems


def merge_parts(
    doc: dict[str, Any],
    parts: list[dict[str, Any]],
    status_of: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Nest each part's steps under the step that launched it; list the parts.

    ``status_of`` gives a part's effective status (readers pass liveness
    inference: a part still ``running`` whose process is gone is ``aborted``).
    Mutates and returns ``doc`` (and the parts); a no-op when there are none.
    """
    if not parts:
        return doc
    # copies: a writer's finished steps are cached dicts that must stay as they were
    doc["steps"] = [
        {k: v for k, v in s.items() if k != "substeps"} if isinstance(s, dict) else s
        for s in doc.get("steps", [])
    ]
    # attach breadth-first from the run's own steps: a part nests only under a step
    # already reachable from the run, so hostile span ids can never make a cycle
    by_span = {
        s["span_id"]: s
        for s in doc.get("steps", [])
        if isinstance(s, dict) and isinstance(s.get("span_id"), str)
    }
    statuses = [status_of(p) if status_of else str(p.get("status")) for p in parts]
    parents: dict[int, dict[str, Any]] = {}
    waiting = list(range(len(parts)))
    while waiting:
        attached = [i for i in waiting if str(parts[i]["part"].get("parent_span_id")) in by_span]
        if not attached:
            break
        for i in attached:
            waiting.remove(i)
            parent = parents[i] = by_span[str(parts[i]["part"]["parent_span_id"])]
            for step in parts[i]["steps"]:
                step.pop("substeps", None)
                step["part"] = parts[i]["part"].get("id")
                step["status"] = _step_status(step, statuses[i])
                if isinstance(step.get("span_id"), str):
                    by_span.setdefault(step["span_id"], step)
            parent.setdefault("substeps", []).extend(parts[i]["steps"])
    summaries = []
    for i, part in enumerate(parts):
        process = part.get("process") if isinstance(part.get("process"), dict) else {}
        summaries.append(
            {
                "id": part["part"].get("id"),
                "name": part.get("name"),
                "status": statuses[i],
                "parent_step": parents[i].get("name") if i in parents else None,
                "pid": process.get("pid"),
                "command": process.get("command"),
                "started_at": part.get("started_at"),
                "ended_at": part.get("ended_at"),
                "exit_code": part.get("exit_code"),
                "signal": part.get("signal"),
                "error": part.get("error"),
                "steps": len(part["steps"]),
            }
        )
    doc["parts"] = summaries
    _merge_metrics(doc, parts)
    merge_user_metrics(doc, parts)
    _merge_params_and_artifacts(doc, parts)
    return doc


def _merge_params_and_artifacts(doc: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    """What a part learnt about the run (a trainer's hyperparameters, the checkpoints
    it saved) is the run's: params the run does not set itself, and the artifacts,
    each once (merging again adds nothing)."""
    # a copy: the writer hands its live params here, which must stay its own
    params = dict(doc["params"]) if isinstance(doc.get("params"), dict) else None
    if params is not None:
        doc["params"] = params
    artifacts = doc.get("artifacts") if isinstance(doc.get("artifacts"), list) else None
    for part in parts:
        part_id = part["part"].get("id")
        if params is not None and isinstance(part.get("params"), dict):
            for key, value in part["params"].items():
                params.setdefault(key, value)
        if artifacts is not None and isinstance(part.get("artifacts"), list):
            known = {a.get("path"): i for i, a in enumerate(artifacts) if isinstance(a, dict)}
            for artifact in part["artifacts"]:
                if not isinstance(artifact, dict):
                    continue
                # one entry per path: the launcher's scan may have found it too
                merged = {**artifact, "part": part_id}
                if artifact.get("path") in known:
                    merged = {**artifacts[known[artifact.get("path")]], **merged}
                    artifacts[known[artifact.get("path")]] = merged
                else:
                    known[artifact.get("path")] = len(artifacts)
                    artifacts.append(merged)


def _merge_metrics(doc: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    """The series the parts logged (``otel-tracker run -- python train.py``: the
    script's ``run.log()``) join the run's own; a key several of them logged is
    summarised over all of them."""
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    # the run's own keys, kept apart once parts joined them: merging again (a reader
    # merges the parts into a manifest the writer merged them into) counts none twice
    own = metrics.get("own_keys", metrics.get("keys")) or {}
    if not isinstance(own, dict):
        return
    keys = dict(own)
    added = False
    for part in parts:
        logged = part.get("metrics")
        if not isinstance(logged, dict) or not isinstance(logged.get("keys"), dict):
            continue
        for key, summary in logged["keys"].items():
            if key not in keys:
                keys[key] = summary
            elif isinstance(keys[key], dict) and isinstance(summary, dict):
                try:  # several processes logged the key (run -- sh -c 'a.py && b.py')
                    keys[key] = merged_summary(keys[key], summary)
                except (KeyError, TypeError, ValueError):
                    continue  # a damaged part: its summary is left out
            added = True
    if added:
        doc["metrics"] = {**metrics, "keys": keys, "own_keys": own}


def _step_status(step: dict[str, Any], part_status: str) -> Any:
    # a step left running by a part whose process is gone did not finish
    if step.get("status") == "running" and part_status == "aborted":
        return "failed"
    return step.get("status")


def merge_run_parts(
    doc: dict[str, Any],
    run_dir: Path,
    *,
    now: float,
    host: str | None,
    stale_after: float,
    stuck_after: float,
    pid_probe: Callable[[int], float | bool | None] | None = None,
) -> list[str]:
    """Read ``run_dir``'s parts and merge them into ``doc`` with their live status
    (a part whose process died while ``running`` is ``aborted``); the problems."""
    parts, problems = read_parts(run_dir)
    if parts:
        from ..contract.run_status import infer_status, pid_start_time

        def status_of(part: dict[str, Any]) -> str:
            return infer_status(
                part,
                run_dir / PARTS_DIR,
                now=now,
                host=host or "",
                stale_after=stale_after,
                stuck_after=stuck_after,
                pid_probe=pid_probe or pid_start_time,
            ).status

        merge_parts(doc, parts, status_of)
    return problems
