"""Configuration: explicit argument > environment variable > default.

Every ``OTEL_TRACKER_*`` variable is read here and only here, through one typed
helper per kind. A bad environment value logs a warning and falls back to the
default; a bad explicit argument raises :class:`~otel_tracker.errors.ConfigError`.
The standard ``OTEL_*`` variables belong to the OpenTelemetry SDK; the ones read
here are ``OTEL_SDK_DISABLED`` (turns tracking off), ``OTEL_TRACES_EXPORTER`` /
``OTEL_METRICS_EXPORTER`` (``otlp`` / ``prometheus`` turn those mirrors on), the
OTLP protocol variables and ``OTEL_EXPORTER_PROMETHEUS_HOST`` / ``_PORT``. The
OTLP exporters read their own endpoint, header and timeout variables.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError
from .values import is_real

logger = logging.getLogger(__name__)

_D = TypeVar("_D", bool, None)

PREFIX = "OTEL_TRACKER_"
DEFAULT_ROOT = Path("output") / "run-tracker"
DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_EXPORT_TIMEOUT_S = 2.0
DEFAULT_PROGRESS_INTERVAL_S = 30.0
DEFAULT_SAMPLE_INTERVAL_S = 5.0
# telemetry.jsonl keeps full resolution for this long; older samples are rolled up
# per DEFAULT_TELEMETRY_ROLLUP_S (README: "Long runs: compact telemetry")
DEFAULT_TELEMETRY_WINDOW_S = 3600.0
DEFAULT_TELEMETRY_ROLLUP_S = 60.0
PROGRESS_MODES = ("auto", "live", "plain", "log", "off")
DEFAULT_STALE_AFTER_S = 120.0  # no heartbeat for this long (other hosts): aborted
DEFAULT_STUCK_AFTER_S = 900.0  # no progress for this long: stuck
DEFAULT_OUTDATED_AFTER_S = 30 * 86400.0  # finished runs older than this: outdated
DEFAULT_ARTIFACT_SCAN_S = 30.0  # `run -- CMD` looks for new artifacts this often

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _warn_bad(name: str, raw: str, expected: str, default: object) -> None:
    logger.warning("ignoring %s=%r: expected %s; using %r", name, raw, expected, default)


def env_bool(name: str, default: _D, environ: Mapping[str, str] | None = None) -> bool | _D:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case)."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _warn_bad(name, raw, "a boolean (true/false)", default)
    return default


def env_float(
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    environ: Mapping[str, str] | None = None,
) -> float:
    """A finite float variable, at least ``minimum`` (exclusive of 0 when minimum is 0)."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        _warn_bad(name, raw, "a number", default)
        return default
    if not math.isfinite(value) or value <= minimum:
        _warn_bad(name, raw, f"a finite number greater than {minimum:g}", default)
        return default
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """An integer variable within ``[minimum, maximum]``."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        _warn_bad(name, raw, "an integer", default)
        return default
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        _warn_bad(name, raw, f"an integer in {bounds}", default)
        return default
    return value


def env_str(name: str, default: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """A string variable; empty counts as unset."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip()


def env_list(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A comma-separated list variable; blanks are dropped."""
    env = os.environ if environ is None else environ
    raw = env.get(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def env_subset(
    name: str, choices: Sequence[str], environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """A switch over named features: unset or true is all of ``choices``, false none,
    a comma-separated list those named (an unknown name warns and is left out)."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip().lower() in _TRUE or raw.strip() == "":
        return frozenset(choices)
    if raw.strip().lower() in _FALSE:
        return frozenset()
    named = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = sorted(named - set(choices))
    if unknown:
        logger.warning(
            "otel-tracker: ignoring %s in %s (known: %s)",
            ", ".join(unknown),
            name,
            ", ".join(choices),
        )
    return frozenset(named & set(choices))


def resolve_root(
    root: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Path:
    """The runs root: argument > ``OTEL_TRACKER_ROOT`` > ``./output/run-tracker``."""
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise ConfigError(f"root must be a path, got {type(root).__name__} {root!r}")
        if str(root).strip() == "":
            raise ConfigError("root must be a non-empty path")
        return Path(root)
    env = os.environ if environ is None else environ
    return Path(env_str(PREFIX + "ROOT", str(DEFAULT_ROOT), env) or DEFAULT_ROOT)


def checked_bool(value: object, name: str) -> bool | None:
    """An explicit on/off argument: ``True``, ``False`` (numpy's too) or ``None``.
    A string is refused: ``"false"`` is truthy, and would turn the setting on."""
    if value is None or isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    raise ConfigError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


# Below these, sampling and heartbeats cost the pipeline more than they tell (a 1 µs
# sample interval slowed it 35%): such a setting is raised to it, with one warning.
MIN_INTERVAL_S = {
    "SAMPLE_INTERVAL": 0.05,
    "HEARTBEAT_INTERVAL": 0.05,
    "PROGRESS_INTERVAL": 0.05,
    "TELEMETRY_ROLLUP": 1.0,
}


def _floored(name: str, seconds: float) -> float:
    floor = MIN_INTERVAL_S.get(name)
    if floor is None or seconds >= floor:
        return seconds
    logger.warning(
        "otel-tracker %s of %gs is below %gs; using %gs", name.lower(), seconds, floor, floor
    )
    return floor


def _positive_seconds(name: str, value: float) -> float:
    if not is_real(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def seconds_setting(
    value: float | None, name: str, default: float, environ: Mapping[str, str]
) -> float:
    """A duration: explicit ``value`` (validated) > ``OTEL_TRACKER_<NAME>`` > ``default``."""
    if value is not None:
        return _floored(name, _positive_seconds(name.lower(), value))
    return _floored(name, env_float(PREFIX + name, default, environ=environ))


def window_setting(
    value: float | None, name: str, default: float, environ: Mapping[str, str]
) -> float:
    """A duration where 0 means "off": explicit ``value`` > ``OTEL_TRACKER_<NAME>`` > ``default``."""
    if value is not None:
        if not is_real(value) or not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{name.lower()} must be 0 (off) or a number of seconds, got {value!r}"
            )
        return float(value)
    raw = environ.get(PREFIX + name)
    if raw is not None and raw.strip() in ("0", "0.0"):
        return 0.0
    return env_float(PREFIX + name, default, environ=environ)


OTLP_PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_OTLP_PROTOCOL = "grpc"  # what the Python SDK's own auto-configuration picks
DEFAULT_PROMETHEUS_HOST = "127.0.0.1"
DEFAULT_PROMETHEUS_PORT = 9464  # the port OpenTelemetry registered for its Prometheus exporter


@dataclass(frozen=True)
class MirrorConfig:
    """Which dashboards a run is mirrored to (the manifest is always written)."""

    otlp: bool = False
    otlp_endpoint: str | None = None  # None: the exporters read OTEL_EXPORTER_OTLP_*ENDPOINT
    otlp_traces_protocol: str = DEFAULT_OTLP_PROTOCOL
    otlp_metrics_protocol: str = DEFAULT_OTLP_PROTOCOL
    otlp_metric_interval: float | None = None  # None: once per resource sample
    prometheus: bool = False
    prometheus_host: str = DEFAULT_PROMETHEUS_HOST
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    tensorboard: bool = False

    @property
    def enabled(self) -> bool:
        return self.otlp or self.prometheus or self.tensorboard

    @classmethod
    def resolve(
        cls,
        *,
        otlp: bool | str | None = None,
        prometheus: bool | int | str | None = None,
        tensorboard: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> MirrorConfig:
        """``otlp`` may be an endpoint URL, ``prometheus`` a port or ``"host:port"``."""
        env = os.environ if environ is None else environ
        traces_exporters = env_list("OTEL_TRACES_EXPORTER", env)
        metrics_exporters = env_list("OTEL_METRICS_EXPORTER", env)

        endpoint = None
        if isinstance(otlp, str):
            endpoint = _endpoint_url(otlp)
            otlp = True
        elif otlp is None:
            otlp = env_bool(
                PREFIX + "OTLP", "otlp" in traces_exporters or "otlp" in metrics_exporters, env
            )
        elif not isinstance(otlp, bool):
            raise ConfigError(f"otlp must be a bool or an endpoint URL, got {otlp!r}")

        host = env_str("OTEL_EXPORTER_PROMETHEUS_HOST", DEFAULT_PROMETHEUS_HOST, env)
        port = env_int(
            "OTEL_EXPORTER_PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT, maximum=65535, environ=env
        )
        if prometheus is None:
            prometheus = env_bool(PREFIX + "PROMETHEUS", "prometheus" in metrics_exporters, env)
        elif isinstance(prometheus, bool):
            pass
        elif isinstance(prometheus, (int, str)):
            host, port = _listen_address(prometheus, host or DEFAULT_PROMETHEUS_HOST)
            prometheus = True
        else:
            raise ConfigError(
                f"prometheus must be a bool, a port or 'host:port', got {prometheus!r}"
            )

        if checked_bool(tensorboard, "tensorboard") is None:
            tensorboard = env_bool(PREFIX + "TENSORBOARD", False, env)
        interval_ms = env_float("OTEL_METRIC_EXPORT_INTERVAL", 0.0, environ=env)
        # the general variable is read once: a bad value warns once, not per signal
        protocol = _otlp_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", env, DEFAULT_OTLP_PROTOCOL)
        return cls(
            otlp=bool(otlp),
            otlp_endpoint=endpoint,
            otlp_traces_protocol=_otlp_protocol(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env, protocol
            ),
            otlp_metrics_protocol=_otlp_protocol(
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", env, protocol
            ),
            otlp_metric_interval=interval_ms / 1000 if interval_ms else None,
            prometheus=bool(prometheus),
            prometheus_host=host or DEFAULT_PROMETHEUS_HOST,
            prometheus_port=port,
            tensorboard=bool(tensorboard),
        )


def _otlp_protocol(name: str, env: Mapping[str, str], default: str) -> str:
    """``OTEL_EXPORTER_OTLP_[<SIGNAL>_]PROTOCOL``, else ``default``; a bad value warns."""
    value = env_str(name, None, env)
    if value is None:
        return default
    if value in OTLP_PROTOCOLS:
        return value
    _warn_bad(name, value, " or ".join(OTLP_PROTOCOLS), default)
    return default


def _endpoint_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ConfigError(f"an OTLP endpoint is a URL such as http://localhost:4317, got {value!r}")
    return value


def _listen_address(value: int | str, default_host: str) -> tuple[str, int]:
    """A port (``9464``, ``"9464"``, ``":9464"``) or ``"host:port"``; port 0 picks a free one."""
    host, port_text = default_host, str(value)
    if isinstance(value, str) and ":" in value:
        host, _, port_text = value.rpartition(":")
        host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"a Prometheus address is a port or 'host:port', got {value!r}")
    return host, port


@dataclass(frozen=True)
class TrackerConfig:
    """Resolved settings of one run. Build it with :meth:`resolve`."""

    root: Path = DEFAULT_ROOT
    enabled: bool = True
    heartbeat_interval: float = DEFAULT_HEARTBEAT_S
    install_signal_handlers: bool = True
    export_timeout: float = DEFAULT_EXPORT_TIMEOUT_S
    env_allowlist: tuple[str, ...] = field(default_factory=tuple)
    progress: str = "auto"
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL_S
    resources: bool = True
    sample_interval: float = DEFAULT_SAMPLE_INTERVAL_S
    attach_context: bool | None = None  # None: when a global tracer provider is set
    sample_in_subprocess: bool = True
    join: bool = True  # join the launcher's run named by OTEL_TRACKER_RUN_DIR
    # every rank of a torchrun/SLURM/MPI job joins one run (record/job.py); the job's
    # name when its launcher gives none, or to override it
    distributed: bool = True
    job_id: str | None = None
    summary_files: bool = True  # summary.json/.md/.txt in the run directory at the end
    # a prune policy applied when the run ends (analysis.retention parses it), and
    # whether it came from OTEL_TRACKER_RETENTION (a bad one then only warns)
    retention: str | None = None
    retention_from_env: bool = False
    telemetry_window: float = DEFAULT_TELEMETRY_WINDOW_S  # 0: every sample kept raw
    telemetry_rollup: float = DEFAULT_TELEMETRY_ROLLUP_S
    pack_telemetry: bool = True  # gzip a finished run's telemetry (if large enough)
    mirrors: MirrorConfig = field(default_factory=MirrorConfig)

    @classmethod
    def resolve(
        cls,
        *,
        root: str | os.PathLike[str] | None = None,
        enabled: bool | None = None,
        heartbeat_interval: float | None = None,
        install_signal_handlers: bool | None = None,
        export_timeout: float | None = None,
        progress: str | None = None,
        progress_interval: float | None = None,
        resources: bool | None = None,
        sample_interval: float | None = None,
        otlp: bool | str | None = None,
        prometheus: bool | int | str | None = None,
        tensorboard: bool | None = None,
        attach_context: bool | None = None,
        sample_in_subprocess: bool | None = None,
        join: bool | None = None,
        distributed: bool | None = None,
        job_id: str | None = None,
        summary_files: bool | None = None,
        retention: str | None = None,
        telemetry_window: float | None = None,
        telemetry_rollup: float | None = None,
        pack_telemetry: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TrackerConfig:
        """Merge explicit arguments (``None`` = not given) over the environment."""
        env = os.environ if environ is None else environ
        resolved_root = resolve_root(root, env)
        for flag, value in (
            ("enabled", enabled),
            ("install_signal_handlers", install_signal_handlers),
            ("resources", resources),
            ("attach_context", attach_context),
            ("sample_in_subprocess", sample_in_subprocess),
            ("join", join),
            ("distributed", distributed),
            ("summary_files", summary_files),
            ("pack_telemetry", pack_telemetry),
        ):
            checked_bool(value, flag)

        if enabled is None:
            sdk_disabled = env_bool("OTEL_SDK_DISABLED", False, env)
            tracker_disabled = env_bool(PREFIX + "DISABLED", False, env)
            enabled = not (sdk_disabled or tracker_disabled)

        heartbeat_interval = seconds_setting(
            heartbeat_interval, "HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_S, env
        )

        if install_signal_handlers is None:
            install_signal_handlers = env_bool(PREFIX + "SIGNAL_HANDLERS", True, env)

        export_timeout = seconds_setting(
            export_timeout, "EXPORT_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_S, env
        )

        if progress is None:
            progress = env_str(PREFIX + "PROGRESS", "auto", env) or "auto"
            if progress not in PROGRESS_MODES:
                _warn_bad(PREFIX + "PROGRESS", progress, " / ".join(PROGRESS_MODES), "auto")
                progress = "auto"
        elif progress not in PROGRESS_MODES:
            raise ConfigError(
                f"progress must be one of {', '.join(PROGRESS_MODES)}, got {progress!r}"
            )

        progress_interval = seconds_setting(
            progress_interval, "PROGRESS_INTERVAL", DEFAULT_PROGRESS_INTERVAL_S, env
        )

        if resources is None:
            resources = env_bool(PREFIX + "RESOURCES", True, env)
        sample_interval = seconds_setting(
            sample_interval, "SAMPLE_INTERVAL", DEFAULT_SAMPLE_INTERVAL_S, env
        )

        if sample_in_subprocess is None:
            sample_in_subprocess = env_bool(PREFIX + "SAMPLE_IN_SUBPROCESS", True, env)
        if attach_context is None:
            attach_context = env_bool(PREFIX + "ATTACH_CONTEXT", None, env)
        if join is None:
            join = env_bool(PREFIX + "JOIN", True, env)
        if distributed is None:
            distributed = env_bool(PREFIX + "DISTRIBUTED", True, env)
        if job_id is not None and (not isinstance(job_id, str) or not job_id.strip()):
            raise ConfigError(f"job_id must be a non-empty string, got {job_id!r}")
        if job_id is None:
            job_id = env_str(PREFIX + "JOB_ID", None, env)
        if summary_files is None:
            summary_files = env_bool(PREFIX + "SUMMARY_FILES", True, env)
        if retention is not None and not isinstance(retention, str):
            raise ConfigError(
                f"retention must be a policy such as 'keep-last=50', got {retention!r}"
            )
        retention_from_env = retention is None
        if retention is None:
            retention = env_str(PREFIX + "RETENTION", None, env)

        if pack_telemetry is None:
            pack_telemetry = env_bool(PREFIX + "PACK_TELEMETRY", True, env)

        return cls(
            telemetry_window=window_setting(
                telemetry_window, "TELEMETRY_WINDOW", DEFAULT_TELEMETRY_WINDOW_S, env
            ),
            telemetry_rollup=seconds_setting(
                telemetry_rollup, "TELEMETRY_ROLLUP", DEFAULT_TELEMETRY_ROLLUP_S, env
            ),
            pack_telemetry=bool(pack_telemetry),
            retention=retention.strip() or None if retention else None,
            retention_from_env=retention_from_env,
            root=resolved_root,
            attach_context=attach_context,
            sample_in_subprocess=bool(sample_in_subprocess),
            join=bool(join),
            distributed=bool(distributed),
            job_id=job_id.strip() or None if job_id else None,
            summary_files=bool(summary_files),
            resources=bool(resources),
            sample_interval=sample_interval,
            progress=progress,
            progress_interval=progress_interval,
            enabled=bool(enabled),
            heartbeat_interval=heartbeat_interval,
            install_signal_handlers=bool(install_signal_handlers),
            export_timeout=export_timeout,
            env_allowlist=env_list(PREFIX + "ENV_ALLOWLIST", env),
            mirrors=MirrorConfig.resolve(
                otlp=otlp, prometheus=prometheus, tensorboard=tensorboard, environ=env
            ),
        )


@dataclass(frozen=True)
class ReaderConfig:
    """Settings of the reading side (store, CLI, status API)."""

    root: Path = DEFAULT_ROOT
    stale_after: float = DEFAULT_STALE_AFTER_S
    stuck_after: float = DEFAULT_STUCK_AFTER_S
    outdated_after: float = DEFAULT_OUTDATED_AFTER_S

    @classmethod
    def resolve(
        cls,
        *,
        root: str | os.PathLike[str] | None = None,
        stale_after: float | None = None,
        stuck_after: float | None = None,
        outdated_after: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ReaderConfig:
        """Explicit arguments (``None`` = not given) over ``OTEL_TRACKER_*`` over defaults."""
        env = os.environ if environ is None else environ

        return cls(
            root=resolve_root(root, env),
            stale_after=seconds_setting(stale_after, "STALE_AFTER", DEFAULT_STALE_AFTER_S, env),
            stuck_after=seconds_setting(stuck_after, "STUCK_AFTER", DEFAULT_STUCK_AFTER_S, env),
            outdated_after=seconds_setting(
                outdated_after, "OUTDATED_AFTER", DEFAULT_OUTDATED_AFTER_S, env
            ),
        )


def artifact_scan_interval(
    value: float | None = None, environ: Mapping[str, str] | None = None
) -> float:
    """How often ``run -- CMD`` / ``pipeline run`` look for new artifacts while the
    command runs (0: only when it ends): argument > ``OTEL_TRACKER_ARTIFACT_SCAN_INTERVAL``
    > 30 s."""
    env = os.environ if environ is None else environ
    return window_setting(value, "ARTIFACT_SCAN_INTERVAL", DEFAULT_ARTIFACT_SCAN_S, env)


def auto_integrations(
    choices: Sequence[str], environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """Which integrations ``run --auto`` attaches: ``OTEL_TRACKER_AUTO_INTEGRATIONS``
    (unset or true: all; false: none; or a list such as ``tqdm,keras``)."""
    return env_subset("OTEL_TRACKER_AUTO_INTEGRATIONS", choices, environ)
