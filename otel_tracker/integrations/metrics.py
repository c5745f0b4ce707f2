"""What the integrations share: the run to report to, and numbers handed to series."""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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
    except (TypeError, ValueError, RuntimeError, OverflowError):  # Runtime: a tensor of many
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


C = TypeVar("C", bound=type)
# ids of the steps a framework integration opened: their progress is the framework's,
# never a tqdm bar's (see otel_tracker.integrations.tqdm)
FRAMEWORK_STEPS: set[int] = set()


def guarded(cls: C) -> C:
    """Every ``on_*`` hook of ``cls`` (and ``setup``/``teardown``) catches what it
    raises: the error is logged once and the callback reports nothing more, but the
    training it watches goes on."""
    for name, method in list(vars(cls).items()):
        if callable(method) and (name.startswith("on_") or name in ("setup", "teardown")):
            setattr(cls, name, _guard(method))
    return cls


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_otel_tracker_broken", False):
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self._otel_tracker_broken = True
            logger.warning(
                "otel-tracker: %s.%s failed (%s: %s); it reports nothing more in this process",
                type(self).__name__,
                method.__name__,
                type(exc).__name__,
                exc,
            )
            return None

    return hook


def open_step(run: Any, name: str, **kwargs: Any) -> Any:
    """A framework's stage as a step of ``run``, entered (current) and marked as the
    framework's own."""
    step = run.step(name, **kwargs)
    step.__enter__()
    FRAMEWORK_STEPS.add(id(step))
    return step


def close_step(step: Any, error: BaseException | None = None) -> None:
    """End a step :func:`open_step` opened (failed with ``error``, if given)."""
    FRAMEWORK_STEPS.discard(id(step))
    step.__exit__(type(error) if error is not None else None, error, None)


def abort_all(callbacks: Any, error: BaseException) -> None:
    """End the open steps of ``callbacks`` (each with an ``abort``) with the ``error``
    leaving a framework's call, which the framework has no hook for; never raises,
    so the user's own error is the one that propagates."""
    for callback in callbacks:
        try:
            callback.abort(error)
        except Exception as problem:
            logger.debug("otel-tracker: step not ended: %s", problem)


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
        # no live display: it would take over the terminal the framework draws on
        tracked = start_process_run(script_name(), progress=progress or "off")
    return tracked.run if tracked is not None else None
