from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otel_tracker.config import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_ROOT,
    TrackerConfig,
    env_bool,
    env_float,
)
from otel_tracker.errors import ConfigError, OtelTrackerError


def test_defaults_without_environment() -> None:
    config = TrackerConfig.resolve(environ={})
    assert config.root == DEFAULT_ROOT == Path("output/run-tracker")
    assert config.enabled is True
    assert config.heartbeat_interval == DEFAULT_HEARTBEAT_S
    assert config.install_signal_handlers is True


def test_argument_beats_environment_beats_default() -> None:
    env = {"OTEL_TRACKER_ROOT": "/env/root", "OTEL_TRACKER_HEARTBEAT_INTERVAL": "2.5"}
    from_env = TrackerConfig.resolve(environ=env)
    assert from_env.root == Path("/env/root")
    assert from_env.heartbeat_interval == 2.5
    explicit = TrackerConfig.resolve(root="/arg/root", heartbeat_interval=7, environ=env)
    assert explicit.root == Path("/arg/root")
    assert explicit.heartbeat_interval == 7.0
    assert TrackerConfig.resolve(environ={}).summary_files is True
    off = {"OTEL_TRACKER_SUMMARY_FILES": "false"}
    assert TrackerConfig.resolve(environ=off).summary_files is False
    assert TrackerConfig.resolve(summary_files=True, environ=off).summary_files is True


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"OTEL_TRACKER_DISABLED": "true"}, False),
        ({"OTEL_TRACKER_DISABLED": "0"}, True),
        ({"OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACKER_DISABLED": "yes"}, False),
    ],
)
def test_disable_switches(env: dict[str, str], enabled: bool) -> None:
    assert TrackerConfig.resolve(environ=env).enabled is enabled
    # an explicit argument still wins
    assert TrackerConfig.resolve(enabled=True, environ=env).enabled is True


@pytest.mark.parametrize("raw", ["soon", "-1", "0", "nan", "inf"])
def test_bad_environment_value_warns_and_falls_back(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        value = env_float(
            "OTEL_TRACKER_HEARTBEAT_INTERVAL", 5.0, environ={"OTEL_TRACKER_HEARTBEAT_INTERVAL": raw}
        )
    assert value == 5.0
    assert "OTEL_TRACKER_HEARTBEAT_INTERVAL" in caplog.text


def test_bad_boolean_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert env_bool("OTEL_TRACKER_DISABLED", False, {"OTEL_TRACKER_DISABLED": "maybe"}) is False
    assert "expected a boolean" in caplog.text


@pytest.mark.parametrize("bad", [0, -3, float("nan"), "5", True])
def test_bad_explicit_argument_raises(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        TrackerConfig.resolve(heartbeat_interval=bad, environ={})  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, OtelTrackerError)


def test_empty_root_argument_raises() -> None:
    with pytest.raises(ValueError):
        TrackerConfig.resolve(root="", environ={})


def test_env_allowlist_is_a_list() -> None:
    config = TrackerConfig.resolve(environ={"OTEL_TRACKER_ENV_ALLOWLIST": "A, B,,C "})
    assert config.env_allowlist == ("A", "B", "C")


def test_auto_integrations_is_all_none_or_the_ones_named(caplog: pytest.LogCaptureFixture) -> None:
    from otel_tracker.config import auto_integrations

    names = ("tqdm", "keras", "lightning")
    assert auto_integrations(names, {}) == frozenset(names)
    assert auto_integrations(names, {"OTEL_TRACKER_AUTO_INTEGRATIONS": "true"}) == frozenset(names)
    assert auto_integrations(names, {"OTEL_TRACKER_AUTO_INTEGRATIONS": "off"}) == frozenset()
    with caplog.at_level(logging.WARNING):
        chosen = auto_integrations(names, {"OTEL_TRACKER_AUTO_INTEGRATIONS": "Keras, tqdm,jax"})
    assert chosen == {"keras", "tqdm"}
    assert "ignoring jax in OTEL_TRACKER_AUTO_INTEGRATIONS" in caplog.text
