"""Pipeline files: a pipeline described as steps with commands, in TOML or YAML.

```toml
name = "nightly-etl"
scenario = "full"                 # optional
env = { PYTHONUNBUFFERED = "1" }  # optional, for every step
cwd = "."                         # optional, relative to this file
params = { epochs = 3, n = 1000 } # optional: the run's params (list, compare, --where)
key_params = ["epochs", "n"]      # optional: history and baselines only from runs with
                                  # the same values (or ignore_params = ["seed"])

[[steps]]
name = "Extract"
command = ["python", "extract.py", "--day", "yesterday"]   # or one shell-free string;
                                  # "{python}" first: the interpreter running otel-tracker
expected_duration = 120           # seconds, optional: the ETA's first guess
timeout = 900                     # seconds, optional: then SIGTERM, and SIGKILL 5 s later
env = { SOURCE = "s3://bucket" }  # optional, over the pipeline's
cwd = "jobs"                      # optional, relative to this file
enabled = true                    # optional: false records the step as skipped
continue_on_error = false         # optional: true lets later steps run and keeps the run green
```

Everything is validated before a run exists: a mistake is one :class:`PipelineError`
naming the file and the key (and, for a syntax error, the line), never a run left
``running``.
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError, OtelTrackerError

# a command's first word that stands for the interpreter running otel-tracker
PYTHON_PLACEHOLDER = "{python}"
PIPELINE_KEYS = (
    "name",
    "scenario",
    "description",
    "env",
    "cwd",
    "params",
    "key_params",
    "ignore_params",
    "steps",
)
STEP_KEYS = (
    "name",
    "command",
    "description",
    "enabled",
    "expected_duration",
    "timeout",
    "env",
    "cwd",
    "continue_on_error",
)


class PipelineError(OtelTrackerError):
    """A pipeline file that cannot be run as written."""


@dataclass(frozen=True)
class PipelineStep:
    """One step: a command and how to run it."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    expected_duration: float | None = None
    timeout: float | None = None
    continue_on_error: bool = False
    description: str | None = None


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline file."""

    name: str
    steps: tuple[PipelineStep, ...]
    path: Path
    scenario: str | None = None
    description: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    key_params: tuple[str, ...] | None = None
    ignore_params: tuple[str, ...] | None = None

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a ``.toml``, ``.yaml`` or ``.yml`` pipeline file."""
    path = Path(path)
    return _pipeline(path, read_settings_file(path, "pipeline file", PipelineError))


def read_settings_file(path: Path, what: str, error: type[OtelTrackerError]) -> Any:
    """The parsed content of a TOML or YAML file; every problem is one ``error``
    naming the file (and, for a syntax error, where)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"{path}: invalid TOML: {exc}") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise MissingExtraError("yaml", "PyYAML", what=f"a YAML {what}") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or exc
            raise error(f"{path}: invalid YAML{where}: {problem}") from None
    raise error(f"{path}: a {what} ends in .toml, .yaml or .yml")


def _pipeline(path: Path, data: Any) -> Pipeline:
    if not isinstance(data, Mapping):
        raise PipelineError(f"{path}: expected a table of pipeline settings at the top")
    _known_keys(path, "the pipeline", data, PIPELINE_KEYS)
    name = _text(path, "name", data.get("name"), required=True)
    base = path.parent.resolve()
    cwd = base / _text(path, "cwd", data.get("cwd"), default=".")
    env = _env(path, "env", data.get("env"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PipelineError(f"{path}: 'steps' must be a non-empty list of steps")
    steps = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(raw, Mapping):
            raise PipelineError(f"{path}: {where} must be a table with a name and a command")
        step_name = _text(path, f"{where}.name", raw.get("name"), required=True)
        where = f"steps[{i}] ({step_name!r})"
        _known_keys(path, where, raw, STEP_KEYS)
        if step_name in seen:
            raise PipelineError(f"{path}: {where}: duplicate step name")
        seen.add(step_name)
        steps.append(
            PipelineStep(
                name=step_name,
                command=_command(path, where, raw.get("command")),
                cwd=(cwd / _text(path, f"{where}.cwd", raw.get("cwd"), default=".")).resolve(),
                env={**env, **_env(path, f"{where}.env", raw.get("env"))},
                enabled=_flag(path, f"{where}.enabled", raw.get("enabled"), True),
                expected_duration=_seconds(path, where, "expected_duration", raw),
                timeout=_seconds(path, where, "timeout", raw),
                continue_on_error=_flag(
                    path, f"{where}.continue_on_error", raw.get("continue_on_error"), False
                ),
                description=_text(path, f"{where}.description", raw.get("description")),
            )
        )
    return Pipeline(
        name=name,
        steps=tuple(steps),
        path=path,
        scenario=_text(path, "scenario", data.get("scenario")),
        description=_text(path, "description", data.get("description")),
        params=_params(path, data.get("params")),
        key_params=_names(path, "key_params", data.get("key_params")),
        ignore_params=_names(path, "ignore_params", data.get("ignore_params")),
    )


def _params(path: Path, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PipelineError(f"{path}: params must be a table (params = {{ epochs = 3 }})")
    return dict(value)


def _names(path: Path, key: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PipelineError(f"{path}: {key} must be a list of param names")
    return tuple(value)


def _known_keys(path: Path, where: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = [str(k) for k in data if k not in known]
    if unknown:
        raise PipelineError(
            f"{path}: {where}: unknown key {unknown[0]!r} (known: {', '.join(known)})"
        )


def _text(
    path: Path, key: str, value: Any, *, required: bool = False, default: str | None = None
) -> Any:
    if value is None:
        if required:
            raise PipelineError(f"{path}: '{key}' is required")
        return default
    if not isinstance(value, str) or not value.strip():
        raise PipelineError(f"{path}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _command(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise PipelineError(f"{path}: {where}.command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        parts = [str(v) for v in value]
    elif value is None:
        raise PipelineError(f"{path}: {where}: 'command' is required")
    else:
        raise PipelineError(
            f"{path}: {where}.command must be a list of strings or one string, got {value!r}"
        )
    if not parts:
        raise PipelineError(f"{path}: {where}.command is empty")
    return tuple(parts)


def _env(path: Path, key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PipelineError(f"{path}: '{key}' must be a table of NAME = value")
    env = {}
    for name, item in value.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise PipelineError(f"{path}: '{key}.{name}' must be a string or a number")
        env[str(name)] = str(item)
    return env


def _flag(path: Path, key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PipelineError(f"{path}: '{key}' must be true or false, got {value!r}")
    return value


def _seconds(path: Path, where: str, key: str, raw: Mapping[str, Any]) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PipelineError(f"{path}: {where}.{key} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise PipelineError(f"{path}: {where}.{key} must be positive, got {value!r}")
    return float(value)
