"""The points of a run's metric series, read back from ``metrics.jsonl`` (and the
``parts/*.metrics.jsonl`` of the processes that joined it): for ``export --series``.

Read line by line through the one no-follow reader; a torn or damaged line is
skipped and counted, never a traceback; a line longer than :data:`MAX_LINE_BYTES`
(more than any batch the writer makes) is skipped whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, loads, open_regular
from ..contract.parts import PARTS_DIR
from ..contract.series import METRICS_NAME, KeySummary
from ..values import is_real, is_whole

MAX_LINE_BYTES = 64 * 1024 * 1024
Point = tuple[str, "str | None", int, "float | None", "float | None"]


def series_files(run_dir: Path) -> list[Path]:
    """The run's own series file, then its parts', oldest part first."""
    files = [run_dir / METRICS_NAME]
    parts = run_dir / PARTS_DIR
    if parts.is_dir() and not parts.is_symlink():
        files += sorted(p for p in parts.glob("*.metrics.jsonl") if not p.name.startswith("."))
    return [f for f in files if f.exists() or f.is_symlink()]


def iter_points(run_dir: Path, problems: list[str]) -> Iterator[Point]:
    """``(key, stage, step, value, time)`` of every point, file by file in file
    order; what cannot be read goes to ``problems`` (one line per file)."""
    for path in series_files(run_dir):
        yield from _file_points(path, problems)


def _file_points(
    path: Path, problems: list[str], sources: dict[str, str] | None = None
) -> Iterator[Point]:
    """The points of one file; ``sources`` gets each imported key's source."""
    skipped = 0
    try:
        with open_regular(path) as file:
            for line in file:
                if not line.strip():
                    continue
                points = _points(line, sources) if len(line) <= MAX_LINE_BYTES else None
                if points is None:
                    skipped += 1
                    continue
                yield from points
    except FileProblem as exc:
        problems.append(str(exc))
        return
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
        return
    if skipped:
        problems.append(f"{path}: {skipped} torn or damaged line(s) skipped")


def _points(line: bytes, sources: dict[str, str] | None = None) -> list[Point] | None:
    try:
        record: Any = loads(line, "metrics.jsonl")
    except FileProblem:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("key"), str):
        return None
    steps, values, times = record.get("step"), record.get("value"), record.get("time")
    if not (isinstance(steps, list) and isinstance(values, list) and isinstance(times, list)):
        return None
    if not len(steps) == len(values) == len(times):
        return None
    stage = record.get("stage") if isinstance(record.get("stage"), str) else None
    if sources is not None and isinstance(record.get("source"), str):
        sources[record["key"]] = record["source"]
    out: list[Point] = []
    for step, value, at in zip(steps, values, times, strict=True):
        if not is_whole(step) or not (value is None or is_real(value)):
            return None
        out.append((record["key"], stage, int(step), value, at if is_real(at) else None))
    return out


def own_summaries(
    run_dir: Path, directions: dict[str, str], problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Each key's summary rebuilt from the run's own ``metrics.jsonl`` (not its
    parts'), as the writer would have made it: what ``recover`` puts into the manifest
    of a run killed after a flush reached the file but before the manifest followed."""
    summaries: dict[str, KeySummary] = {}
    path = run_dir / METRICS_NAME
    if not (path.exists() or path.is_symlink()):
        return {}
    sources: dict[str, str] = {}
    for key, _stage, step, value, _at in _file_points(path, problems, sources):
        summary = summaries.get(key)
        if summary is None:
            summary = summaries[key] = KeySummary()
            summary.source = sources.get(key)
            if directions.get(key) in ("max", "min"):
                summary.declare(directions[key])
        summary.add(step, value)
    return {key: s.to_dict() for key, s in sorted(summaries.items())}
