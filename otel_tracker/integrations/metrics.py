"""What the integrations share: the run to report to, and numbers handed to series."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

# Which way is better, guessed from a metric's name when a framework does not say:
# the manifest's "best" of a key needs a direction.
_LOWER_IS_BETTER = re.compile(
    r"(^|[_/.\-])(loss|err|error|mse|mae|rmse|nll|perplexity|ppl|wer|cer)($|[_/.\-])", re.I
)
_HIGHER_IS_BETTER = re.compile(
    r"(^|[_/.\-])(acc|accuracy|f1|precision|recall|auc|auroc|bleu|rouge\w*|iou|map|reward)"
    r"($|[_/.\-])",
    re.I,
)


def guess_direction(key: str) -> str | None:
    """``"min"`` for a loss or an error, ``"max"`` for an accuracy-like score, else
    ``None`` (a learning rate or a throughput has no better way)."""
    if _LOWER_IS_BETTER.search(key):
        return "min"
    if _HIGHER_IS_BETTER.search(key):
        return "max"
    return None


def number(value: Any) -> float | None:
    """``value`` as a finite float (numbers, numpy and one-element tensors), else ``None``."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of many values
        return None
    return result if math.isfinite(result) else None


class SeriesForwarder:
    """Hands a framework's metrics to ``run.log`` with a direction for each new key."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._declared: set[str] = set()
        self._last: dict[str, float] = {}

    def forward(
        self, values: Mapping[str, Any], step: int | None, *, changed_only: bool = False
    ) -> None:
        numbers = {}
        for key, raw in values.items():
            value = number(raw)
            if value is None or (changed_only and self._last.get(str(key)) == value):
                continue
            numbers[str(key)] = self._last[str(key)] = value
        if not numbers:
            return
        new = {k: d for k in numbers if k not in self._declared and (d := guess_direction(k))}
        self._declared.update(numbers)
        try:
            self.run.log(numbers, step=step, direction=new or None)
        except Exception as exc:  # a bad value from a framework never stops training
            logger.debug("otel-tracker: metrics not logged: %s", exc)


def script_name() -> str:
    """The running script's name (``train`` for ``train.py``), naming a run a callback
    starts on its own, as ``otel-tracker run`` names one."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    return os.path.splitext(os.path.basename(argv0))[0] or "python"


def run_to_report(explicit: Any | None, progress: str | None = None) -> Any | None:
    """``explicit``, else the run current now, else a run of this process started
    for it (ended at exit; see :mod:`~otel_tracker.integrations.process_run`)."""
    if explicit is not None:
        return explicit
    from ..api import current_run
    from .process_run import current_process_run, start_process_run

    found = current_run()
    if found is not None and not found.ended:
        return found
    tracked = current_process_run()
    if tracked is None or tracked.run.ended:
        tracked = start_process_run(script_name(), progress=progress)
    return tracked.run if tracked is not None else None
