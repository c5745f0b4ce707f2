"""The one exception hierarchy of otel-tracker."""

from __future__ import annotations


class OtelTrackerError(Exception):
    """Base class of every error otel-tracker raises on purpose.

    The CLI turns it into a one-line message and a non-zero exit status.
    """


class ConfigError(OtelTrackerError, ValueError):
    """An explicit argument is invalid (environment values only warn)."""


class RunNotFoundError(OtelTrackerError, LookupError):
    """No run matches the given id, prefix or alias."""
