"""The one exception hierarchy of otel-tracker."""

from __future__ import annotations


class OtelTrackerError(Exception):
    """Base class of every error otel-tracker raises on purpose.

    The CLI turns it into a one-line message and exits with :attr:`exit_status`.
    """

    exit_status = 2


class CommandNotRunnableError(OtelTrackerError):
    """A wrapped command does not exist (exit 127) or cannot be executed (126),
    the statuses a shell, ``env`` and ``timeout`` use, so scripts can tell it from
    a command that ran and failed."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


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
