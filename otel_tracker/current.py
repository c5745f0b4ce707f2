"""The run and step active in this context (no OpenTelemetry import, so the API stays light)."""

from __future__ import annotations

import contextvars
from typing import Any

current_run_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "otel_tracker_run", default=None
)
current_step_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "otel_tracker_step", default=None
)
