"""Exporters shut down side by side under one deadline: a dead endpoint never holds
the process hostage."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)


def quietly(*shutdowns: Callable[[], object]) -> None:
    for shutdown in shutdowns:
        try:
            shutdown()
        except Exception:
            logger.warning("otel-tracker exporter shutdown failed", exc_info=True)


def shut_down_by(deadline: float, **groups: Sequence[Callable[[], object]]) -> bool:
    """Run each group of shutdowns in order on its own daemon thread, the groups side
    by side, until ``time.monotonic()`` reaches ``deadline``; ``True`` if all finished."""
    workers = [
        threading.Thread(
            target=quietly, args=tuple(steps), name=f"otel-tracker-shutdown-{name}", daemon=True
        )
        for name, steps in groups.items()
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return not any(worker.is_alive() for worker in workers)
