"""What a Weights & Biases run directory (``wandb/offline-run-*`` or ``wandb/run-*``)
holds, read from its plain files; no ``wandb`` package needed.

- ``files/wandb-summary.json``: each number's final value (nested dicts flattened
  with ``.``, as W&B's own UI shows them), at the summary's ``_step``;
- ``files/wandb-history.jsonl``, where an older W&B wrote one: whole series;
- ``files/config.yaml``: the config, ``{key: {value: ...}}`` (PyYAML, lazily).

W&B's own keys (``_step``, ``_runtime``, ``_wandb``...) and media (dicts with a
``_type``) are left out. A newer W&B keeps its history only in the binary
``run-*.wandb`` log, which is not read: its summary still gives each key's last value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, loads, read_bytes, read_json
from ..values import is_real, is_whole
from .tensorboard_content import Point, ThinnedPoints

MAX_SUMMARY_BYTES = 16 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_HISTORY_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 4  # of a nested summary value


@dataclass
class WandbRunContent:
    """One W&B run's series, config and the problems met reading them."""

    run_id: str
    series: dict[str, list[Point]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def wandb_run_id(directory: Path) -> str:
    """``offline-run-20261203_101500-3k9x2m1q`` -> ``3k9x2m1q``."""
    return directory.name.rsplit("-", 1)[-1] or directory.name


def read_wandb_run(directory: Path) -> WandbRunContent:
    """The content of one W&B run directory (missing files are no problem)."""
    content = WandbRunContent(wandb_run_id(directory))
    files = directory / "files"
    history = files / "wandb-history.jsonl"
    if history.exists():
        _history(history, content)
    summary = files / "wandb-summary.json"
    if summary.exists():
        _summary(summary, content)
    config = files / "config.yaml"
    if config.exists():
        _config(config, content)
    return content


def _summary(path: Path, content: WandbRunContent) -> None:
    try:
        data = read_json(path, MAX_SUMMARY_BYTES)
    except FileProblem as exc:
        content.problems.append(f"W&B summary not read: {exc}")
        return
    if not isinstance(data, dict):
        content.problems.append(f"W&B summary {path} is not an object; not read")
        return
    step = int(data["_step"]) if is_whole(data.get("_step")) else 0
    at = float(data["_timestamp"]) if is_real(data.get("_timestamp")) else None
    for key, value in _numbers(data):
        if key not in content.series:  # a history's whole series says more
            content.series[key] = [(step, value, at)]


def _history(path: Path, content: WandbRunContent) -> None:
    try:
        raw = read_bytes(path, MAX_HISTORY_BYTES)
    except FileProblem as exc:
        content.problems.append(f"W&B history not read: {exc}")
        return
    series: dict[str, ThinnedPoints] = {}
    for number, line in enumerate(raw.splitlines()):
        try:
            row = loads(line, "wandb-history.jsonl")
        except FileProblem:
            continue  # a line torn by a crash
        if not isinstance(row, dict):
            continue
        step = int(row["_step"]) if is_whole(row.get("_step")) else number
        at = float(row["_timestamp"]) if is_real(row.get("_timestamp")) else None
        for key, value in _numbers(row):
            series.setdefault(key, ThinnedPoints()).append((step, value, at))
    content.series.update({key: points.kept() for key, points in series.items()})


def _numbers(data: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, float]]:
    """The numbers of a summary or history row, flattened; W&B's own keys and media left out."""
    out: list[tuple[str, float]] = []
    for key, value in data.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if "_type" not in value and depth < MAX_DEPTH:
                out.extend(_numbers(value, f"{name}.", depth + 1))
        elif is_real(value) and math.isfinite(value):
            out.append((name, float(value)))
    return out


def _config(path: Path, content: WandbRunContent) -> None:
    try:
        text = read_bytes(path, MAX_CONFIG_BYTES).decode("utf-8", "replace")
    except FileProblem as exc:
        content.problems.append(f"W&B config not read: {exc}")
        return
    try:
        import yaml
    except ImportError:
        content.problems.append(
            "W&B config.yaml not read: reading it needs PyYAML: pip install 'otel-tracker[yaml]'"
        )
        return
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        content.problems.append(f"W&B config {path} is not YAML: {exc}"[:300])
        return
    if not isinstance(data, dict):
        return
    for key, entry in data.items():
        if not isinstance(key, str) or key.startswith("_") or key == "wandb_version":
            continue
        # W&B writes {key: {desc: ..., value: ...}}; a hand-made file may hold plain values
        value = entry.get("value") if isinstance(entry, dict) and "value" in entry else entry
        content.config[key] = value
