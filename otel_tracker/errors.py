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


class MissingExtraError(OtelTrackerError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, extra: str, package: str, what: str | None = None) -> None:
        super().__init__(
            f"{what or f'the {extra} mirror'} needs {package}: pip install 'otel-tracker[{extra}]'"
        )
        self.extra = extra
