"""otel-tracker: observable ML and data pipeline runs with OpenTelemetry.

>>> from otel_tracker import track_run
>>> with track_run("my-pipeline", steps=["load", "train"]) as run:
...     with run.step("load") as step:
...         step.advance()

Importing this package is cheap: the OpenTelemetry SDK is loaded only when a
run is actually tracked.
"""

from __future__ import annotations

from .api import current_run, current_step, step, track_run
from .errors import ConfigError, OtelTrackerError, RunNotFoundError
from .version import __version__

__all__ = [
    "ConfigError",
    "OtelTrackerError",
    "RunNotFoundError",
    "__version__",
    "current_run",
    "current_step",
    "step",
    "track_run",
]
