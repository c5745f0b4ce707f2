"""Find what a wrapped command left behind: TensorBoard runs, checkpoints, W&B runs, logs.

Only files modified since the run started count, so older files in a shared
directory are not claimed. The walk is bounded (files, depth, time) and never
follows symlinks or enters hidden, cache or environment directories. A worker
can add hints in ``otel-tracker-artifacts.json`` (a list of ``{"path", "kind"}``),
merged after validation: paths must stay inside the scanned directory.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, read_json

logger = logging.getLogger(__name__)

HINTS_FILE = "otel-tracker-artifacts.json"
MAX_HINTS_BYTES = 1024 * 1024
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".h5", ".keras", ".onnx", ".joblib")
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", ".venv", "env"})
MAX_FILES = 20_000
MAX_DEPTH = 8
MAX_SECONDS = 2.0


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str


def scan(
    directory: Path,
    *,
    since: float | None = None,
    exclude: tuple[Path, ...] = (),
    max_files: int = MAX_FILES,
    max_depth: int = MAX_DEPTH,
    max_seconds: float = MAX_SECONDS,
) -> tuple[list[Artifact], list[str]]:
    """Artifacts under ``directory`` and any problems (hint errors, a truncated walk)."""
    base = directory.resolve()
    excluded = {p.resolve() for p in exclude}
    found: dict[Path, str] = {}
    problems: list[str] = []
    deadline = time.monotonic() + max_seconds
    visited = 0
    stack: list[tuple[Path, int]] = [(base, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            visited += 1
            if visited > max_files or time.monotonic() > deadline:
                problems.append(f"artifact scan of {base} stopped after {visited - 1} entries")
                return _merge(found, base, problems)
            path = Path(entry.path)
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if (
                    entry.name.startswith(".")
                    or entry.name in SKIP_DIRS
                    or path.resolve() in excluded
                ):
                    continue
                if entry.name.startswith(("offline-run-", "run-")) and folder.name == "wandb":
                    if _recent(path, since):
                        found[path] = "wandb"
                    continue
                if depth < max_depth:
                    stack.append((path, depth + 1))
                continue
            if not _recent(path, since):
                continue
            name = entry.name
            if name.startswith("events.out.tfevents."):
                found[path.parent] = "tensorboard"
            elif name.endswith(CHECKPOINT_SUFFIXES):
                found[path] = "checkpoint"
            elif name.endswith(".log"):
                found[path] = "log"
    return _merge(found, base, problems)


def _recent(path: Path, since: float | None) -> bool:
    if since is None:
        return True
    try:
        return path.stat().st_mtime >= since - 1.0  # coarse filesystem timestamps
    except OSError:
        return False


def _merge(
    found: dict[Path, str], base: Path, problems: list[str]
) -> tuple[list[Artifact], list[str]]:
    hints = base / HINTS_FILE
    if hints.is_file():
        for path, kind, problem in _read_hints(hints, base):
            if problem:
                problems.append(problem)
            elif path is not None and kind is not None:
                found[path] = kind
    return [Artifact(p, k) for p, k in sorted(found.items())], problems


def _read_hints(hints: Path, base: Path) -> list[tuple[Path | None, str | None, str | None]]:
    try:  # the one bounded, no-follow way to read a JSON file we did not write
        data: Any = read_json(hints, MAX_HINTS_BYTES)
    except FileProblem as exc:
        return [(None, None, str(exc))]
    if not isinstance(data, list):
        return [(None, None, f'{hints}: expected a list of {{"path", "kind"}} objects')]
    out: list[tuple[Path | None, str | None, str | None]] = []
    for i, item in enumerate(data):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("path"), str)
            or not isinstance(item.get("kind"), str)
        ):
            out.append((None, None, f"{hints}[{i}]: needs string 'path' and 'kind'"))
            continue
        path = (base / item["path"]).resolve()
        if not path.is_relative_to(base):
            out.append((None, None, f"{hints}[{i}]: {item['path']!r} is outside {base}; ignored"))
            continue
        if not path.exists():
            out.append((None, None, f"{hints}[{i}]: {item['path']!r} does not exist; ignored"))
            continue
        out.append((path, item["kind"][:64], None))
    return out
