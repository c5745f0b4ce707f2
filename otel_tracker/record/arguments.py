"""``track_run``'s arguments checked (a user mistake fails fast with ``ConfigError``)
and the run's first record built from them."""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contract.document import SCORE_DIRECTIONS, RunRecord, jsonable
from ..contract.liveness import process_identity
from ..contract.paths import LOCK_NAME
from ..environment import collect_environment, git_info, host_name
from ..errors import ConfigError
from ..redact.objects import redact_value
from ..redact.text import redact_argv, remember_environment
from ..values import clean_text, is_real
from ..version import __version__

if TYPE_CHECKING:
    from ..config import TrackerConfig
    from .join import JoinTarget


def new_run_record(
    run_id: str,
    name: str,
    *,
    scenario: str | None,
    kind: str | None,
    params: Mapping[str, Any] | None,
    run_dir: Path | None,
    join: JoinTarget | None,
    config: TrackerConfig,
    environ: Mapping[str, str],
) -> RunRecord:
    """A run's record before its span starts: who, where, what, and its history."""
    cwd = Path.cwd()
    # an error message or a wrapped command's log may quote HF_TOKEN's value verbatim
    remember_environment(environ)
    record = RunRecord(
        run_id=run_id,
        name=name,
        scenario=scenario,
        params=dict(params or {}),
        process={
            **process_identity(),
            "host": host_name(),
            "user": current_user(),
            "cwd": str(cwd),
            "command": redact_argv(getattr(sys, "orig_argv", sys.argv)),
        },
        environment=collect_environment(cwd, environ, config.env_allowlist),
        git=git_info(cwd),
        tracker={
            "version": __version__,
            "heartbeat_interval_s": config.heartbeat_interval,
            "lock_file": join.lock_name if join else LOCK_NAME,
        },
        run_dir=str(run_dir.resolve()) if run_dir else None,
        kind=kind,
    )
    if join is not None:
        record.part = {"id": join.part_id, "parent_span_id": join.parent_span_id}
    else:
        record.parts_from = run_dir
    return record


def recorded_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Params as the manifest records them: walked field by field into plain JSON with
    secrets redacted (see :mod:`otel_tracker.redact.objects`: bounded, cycle-safe, it
    never raises). Runs before the run directory exists."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError("params must be a mapping")
    return jsonable(redact_value(params))


def history_key(
    params: Mapping[str, Any],
    names: Sequence[str] | None,
    ignored: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """The run's configuration key: the values of the params that change the work
    (``key_params``, nested ones dotted; or, with ``ignore_params``, every param but
    those, such as seeds), and a digest of them that earlier runs must share to be
    its history; ``None`` when neither was given."""
    if names is not None and ignored is not None:
        raise ConfigError("give key_params or ignore_params, not both")
    if ignored is not None:
        _checked_names(ignored, "ignore_params")
        names = [n for n in _param_paths(params) if not _under_any(n, ignored)]
    if names is None:
        return None
    _checked_names(names, "key_params")
    values: dict[str, Any] = {}
    for name in sorted(set(names)):
        value: Any = params
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        values[name] = value
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return {"params": values, "digest": hashlib.sha256(text.encode()).hexdigest()[:16]}


def _checked_names(names: Any, argument: str) -> None:
    if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{argument} must be a list of param names, got {names!r}")


def _param_paths(params: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every leaf param's dotted path (``optimizer.lr``)."""
    paths: list[str] = []
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            paths += _param_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def _under_any(path: str, ignored: Sequence[str]) -> bool:
    return any(path == name or path.startswith(name + ".") for name in ignored)


def checked_scores(
    scores: Mapping[str, float], direction: Mapping[str, str] | None
) -> tuple[dict[str, float], dict[str, str]]:
    """``log_scores``' arguments as plain floats and directions, or ``ConfigError``."""
    directions = dict(direction or {})
    for name, value in directions.items():
        if value not in SCORE_DIRECTIONS:
            raise ConfigError(f"direction of {name!r} must be 'max' or 'min', got {value!r}")
    values: dict[str, float] = {}
    for name, value in scores.items():
        if not is_real(value) or not math.isfinite(value):
            raise ConfigError(f"score {name!r} must be a finite number, got {value!r}")
        values[clean_text(str(name))] = float(value)
    return values, directions


def checked_durations(expected: Mapping[str, float] | None) -> dict[str, float]:
    """``expected_durations`` as plain floats, or ``ConfigError``."""
    if expected is None:
        return {}
    if not isinstance(expected, Mapping):
        raise ConfigError("expected_durations must map step names to seconds")
    durations = {}
    for name, seconds in expected.items():
        if not is_real(seconds) or not 0 < seconds < math.inf:
            raise ConfigError(
                f"expected duration of {name!r} must be positive seconds, got {seconds!r}"
            )
        durations[clean_text(str(name))] = float(seconds)
    return durations


def validate_steps(steps: Iterable[str] | None) -> list[str]:
    if steps is None:
        return []
    if isinstance(steps, str):
        raise ConfigError("steps must be a list of step names, not a single string")
    names = list(steps)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"step names must be non-empty strings, got {name!r}")
    names = [clean_text(name) for name in names]
    if len(set(names)) != len(names):
        raise ConfigError("declared step names must be unique")
    return names


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
