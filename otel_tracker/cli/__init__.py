"""The ``otel-tracker`` command: one module per command group, a thin layer over
the library. ``python -m otel_tracker.cli`` runs it too."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
