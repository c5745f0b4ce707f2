"""Baselines: the expected figures of one pipeline (and scenario), made from completed runs.

A baseline is one human-readable JSON file, ``<root>/baselines/<key>.json``, where
the key is the pipeline's slug plus ``--<scenario slug>`` when it has one, plus
``--cfg-<digest>`` when its runs were keyed by their configuration
(``track_run(key_params=...)``): a run is judged only against runs of its own
configuration, as its ETA and history are. It keeps
the figures of every run it was made from (so an update can add runs without the
old run directories) and their summary per step: duration and, for steps that
count items, throughput. ``revision`` goes up by one on every update, and
``revisions`` says which runs each one used.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..contract.atomic import write_json_atomic
from ..contract.jsonfile import FileProblem, read_json
from ..contract.paths import slugify
from ..contract.shape import schema_problem
from ..errors import OtelTrackerError
from ..history.pipeline_history import history_digest
from ..schema import baseline_schema
from .figures import step_figures

BASELINE_VERSION = 1
BASELINE_DIR = "baselines"
MAX_BASELINE_RUNS = 50  # an update past this forgets the oldest runs
MAX_BASELINE_BYTES = 16 * 1024 * 1024
_KEY = re.compile(r"^[a-z0-9]+(-{1,2}[a-z0-9]+)*$")


def baseline_key(pipeline: str, scenario: str | None, config: str | None = None) -> str:
    """``imitation-pipeline``, ``imitation-pipeline--nightly`` or
    ``imitation-pipeline--nightly--cfg-3f2a...`` (a configuration digest): the file's stem."""
    key = slugify(pipeline)
    key = f"{key}--{slugify(scenario)}" if scenario else key
    return f"{key}--cfg-{slugify(config)}" if config else key


def config_text(doc: dict[str, Any]) -> str:
    """``epochs=5, n=3``: the key params of a run or baseline, for messages."""
    key = doc.get("history_key")
    params = key.get("params") if isinstance(key, dict) else None
    if not isinstance(params, dict) or not params:
        return "no key params"
    return ", ".join(f"{name}={value}" for name, value in params.items())


def summarize(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 6),
        "mean": round(statistics.fmean(values), 6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
    }


def run_record(doc: dict[str, Any]) -> dict[str, Any]:
    """What a baseline keeps of one completed run."""
    steps = {}
    for step in doc.get("steps", []):
        if not isinstance(step, dict) or step.get("status") != "completed":
            continue
        fig = step_figures(step)
        if fig.duration_s is None:
            continue
        entry: dict[str, Any] = {"duration_s": fig.duration_s}
        if fig.items:
            entry.update(items=fig.items, unit=fig.unit, throughput=fig.throughput)
        steps[fig.step] = entry
    return {
        "run_id": doc.get("run_id"),
        "started_at": doc.get("started_at"),
        "duration_s": doc.get("duration_s"),
        "steps": steps,
        "scores": {
            name: {"value": s.get("latest"), "direction": s.get("direction", "max")}
            for name, s in (doc.get("scores") or {}).items()
            if isinstance(s, dict) and isinstance(s.get("latest"), (int, float))
        },
    }


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    steps: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for record in records:
        for name in record["steps"]:
            if name not in order:
                order.append(name)
    for name in order:
        entries = [r["steps"][name] for r in records if name in r["steps"]]
        summary: dict[str, Any] = {
            "runs": len(entries),
            "duration_s": summarize([e["duration_s"] for e in entries]),
        }
        rates = [e["throughput"] for e in entries if e.get("throughput")]
        if rates:
            summary["throughput"] = {
                "unit": f"{entries[-1].get('unit') or 'items'}/s",
                **summarize(rates),
            }
        steps[name] = summary
    scores: dict[str, dict[str, Any]] = {}
    for record in records:
        for name, score in record["scores"].items():
            scores.setdefault(name, {"direction": score["direction"], "values": []})
            scores[name]["values"].append(score["value"])
    durations = [r["duration_s"] for r in records if isinstance(r["duration_s"], (int, float))]
    return {
        "run": {"duration_s": summarize(durations) if durations else None},
        "steps": steps,
        "scores": {
            name: {"direction": s["direction"], **summarize(s["values"])}
            for name, s in scores.items()
        },
    }


def _check_runs(
    docs: Sequence[dict[str, Any]],
    pipeline: str | None,
    scenario: str | None,
    baseline: dict[str, Any] | None = None,
) -> None:
    if not docs:
        raise OtelTrackerError("a baseline needs at least one run (--from RUN)")
    for doc in docs:
        if doc.get("status") != "completed":
            raise OtelTrackerError(
                f"run {doc.get('run_id')} is {doc.get('status')}; "
                "baselines are made from completed runs only"
            )
    keys = {(d.get("name"), d.get("scenario")) for d in docs}
    if pipeline is not None:
        keys.add((pipeline, scenario))
    if len(keys) > 1:
        found = ", ".join(f"{n}" + (f" / {s}" if s else "") for n, s in sorted(keys, key=str))
        raise OtelTrackerError(
            f"the runs belong to different pipelines or scenarios ({found}); "
            "a baseline covers one pipeline and scenario"
        )
    configs = {history_digest(d): d for d in docs}
    if baseline is not None:
        configs.setdefault(history_digest(baseline), baseline)
    if len(configs) > 1:
        found = "; ".join(sorted(config_text(d) for d in configs.values()))
        raise OtelTrackerError(
            f"the runs have different configurations ({found}); "
            "a baseline covers one configuration (see track_run(key_params=...))"
        )


def create_baseline(docs: Sequence[dict[str, Any]], now: str) -> dict[str, Any]:
    """A new baseline (revision 1) from completed runs of one pipeline and scenario."""
    _check_runs(docs, None, None)
    pipeline, scenario = docs[0].get("name"), docs[0].get("scenario")
    records = [run_record(d) for d in docs][-MAX_BASELINE_RUNS:]
    config = history_digest(docs[0])
    return {
        "baseline_version": BASELINE_VERSION,
        "key": baseline_key(str(pipeline), scenario, config),
        "pipeline": pipeline,
        "scenario": scenario,
        **({"history_key": docs[0]["history_key"]} if config else {}),
        "revision": 1,
        "created_at": now,
        "updated_at": now,
        **_summary(records),
        "source_runs": records,
        "revisions": [{"revision": 1, "at": now, "runs": [r["run_id"] for r in records]}],
    }


def update_baseline(
    baseline: dict[str, Any], docs: Sequence[dict[str, Any]], now: str, *, replace: bool = False
) -> dict[str, Any]:
    """The next revision: ``docs`` added to (or, with ``replace``, instead of) its runs."""
    _check_runs(docs, baseline.get("pipeline"), baseline.get("scenario"), baseline)
    new = [run_record(d) for d in docs]
    new_ids = {r["run_id"] for r in new}
    kept = [] if replace else [r for r in baseline["source_runs"] if r["run_id"] not in new_ids]
    records = (kept + new)[-MAX_BASELINE_RUNS:]
    revision = int(baseline.get("revision", 1)) + 1
    return {
        **baseline,
        "baseline_version": BASELINE_VERSION,
        "revision": revision,
        "updated_at": now,
        **_summary(records),
        "source_runs": records,
        "revisions": [
            *baseline.get("revisions", []),
            {"revision": revision, "at": now, "runs": [r["run_id"] for r in records]},
        ],
    }


def check_version(doc: dict[str, Any], field: str, newest: int, source: str) -> int:
    """``doc[field]``, a format version this otel-tracker reads (1..``newest``); a
    clear error otherwise (an upgrade, for a newer one)."""
    version = doc.get(field)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise OtelTrackerError(f"{source}: bad {field} {version!r}")
    if version > newest:
        raise OtelTrackerError(
            f"{source}: {field} {version} is newer than this otel-tracker reads "
            f"({newest}); upgrade otel-tracker"
        )
    return version


def check_baseline(doc: Any, source: str) -> dict[str, Any]:
    """``doc`` if it is a baseline this version can read (every key its readers use
    there and of its type: ``schema/baseline.schema.json``); a clear error otherwise."""
    if not isinstance(doc, dict) or "baseline_version" not in doc:
        raise OtelTrackerError(f"{source}: not an otel-tracker baseline (no baseline_version)")
    check_version(doc, "baseline_version", BASELINE_VERSION, source)
    problem = schema_problem(doc, baseline_schema(), "top level", required=True)
    if problem:
        raise OtelTrackerError(f"{source}: not a usable baseline ({problem})")
    return doc


def read_baseline(path: Path) -> dict[str, Any]:
    try:
        doc = read_json(path, MAX_BASELINE_BYTES)
    except FileProblem as exc:
        if exc.missing:
            raise OtelTrackerError(f"no baseline at {path}") from None
        raise
    return check_baseline(doc, str(path))


class BaselineStore:
    """The baselines in one directory: ``<root>/baselines``, or any other."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @classmethod
    def under(cls, root: str | os.PathLike[str]) -> BaselineStore:
        """The baselines of a runs root."""
        return cls(Path(root) / BASELINE_DIR)

    def path(self, key: str) -> Path:
        # a key is slugs joined by "--"; anything else is made one, never a path
        safe = key if _KEY.match(key) else slugify(key)
        return self.directory / f"{safe}.json"

    def resolve(self, ref: str) -> Path:
        """A baseline by key (``imitation-pipeline--nightly``) or by file path."""
        if ref.endswith(".json") or os.sep in ref:
            return Path(ref)
        return self.path(ref)

    def load(self, ref: str) -> dict[str, Any]:
        path = self.resolve(ref)
        if not path.exists() and path.parent == self.directory:
            known = ", ".join(self.keys()) or "none yet"
            raise OtelTrackerError(f"no baseline {ref!r} under {self.directory} (known: {known})")
        return read_baseline(path)

    def find(
        self, pipeline: str, scenario: str | None, config: str | None = None
    ) -> dict[str, Any] | None:
        """The baseline of this pipeline, scenario and configuration digest (see
        :func:`~otel_tracker.history.pipeline_history.history_digest`), or None when there is none: a run keyed by its
        configuration is never judged against another configuration's runs."""
        path = self.path(baseline_key(pipeline, scenario, config))
        if not path.exists():
            return None
        doc = read_baseline(path)
        if (doc.get("pipeline"), doc.get("scenario"), history_digest(doc)) != (
            pipeline,
            scenario,
            config,
        ):
            return None  # another name with the same slug
        return doc

    def save(self, doc: dict[str, Any], path: Path | None = None) -> Path:
        path = path or self.path(doc["key"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, doc, indent=2)
        except OSError as exc:
            raise OtelTrackerError(f"cannot write baseline {path}: {exc.strerror or exc}") from None
        return path

    def keys(self) -> list[str]:
        try:
            return sorted(p.stem for p in self.directory.glob("*.json"))
        except OSError:
            return []

    def all(self) -> Iterable[tuple[str, dict[str, Any] | OtelTrackerError]]:
        for key in self.keys():
            try:
                yield key, read_baseline(self.path(key))
            except OtelTrackerError as exc:
                yield key, exc
