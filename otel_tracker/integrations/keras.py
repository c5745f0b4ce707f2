"""Keras 3 (any backend): ``fit`` as a step whose progress is its batches (its
epochs when the steps per epoch are unknown), the epochs' ``logs`` as series, and
``evaluate`` / ``predict`` outside ``fit`` as steps of their own.

>>> model.fit(x, y, epochs=5, callbacks=[OtelTrackerCallback()])  # doctest: +SKIP

Under ``otel-tracker run --auto`` every ``fit``, ``evaluate`` and ``predict`` gets
one without code changes. Validation inside ``fit`` is part of ``fit``; its
``val_*`` values arrive with the epoch's logs.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import struct
from types import ModuleType
from typing import Any

from .metrics import (
    SeriesForwarder,
    abort_all,
    close_step,
    guarded,
    number,
    open_step,
    run_to_report,
)
from .patching import ORIGINAL, is_patched

try:
    import keras as _framework
except ImportError as exc:
    raise ImportError("otel_tracker.integrations.keras needs Keras 3: pip install keras") from exc

logger = logging.getLogger(__name__)


# evaluate()/predict() outside fit() each make a step; a loop calling predict() per
# sample would make thousands, so after this many the rest are not steps
MAX_STAGE_STEPS = 100
_stage_steps = 0
_fitting = 0  # fit() calls running now: an evaluate() inside one (a callback's) is its part


@guarded
class OtelTrackerCallback(_framework.callbacks.Callback):  # type: ignore[misc]
    """Reports ``fit``/``evaluate``/``predict`` to otel-tracker; see
    :mod:`otel_tracker.integrations.keras`."""

    # the batch hooks only add to an integer: Keras may call them off the training
    # thread, and then need not convert each batch's logs (a device sync) for us
    async_safe = True

    def __init__(self, run: Any | None = None) -> None:
        super().__init__()
        self._explicit_run = run
        self._run: Any | None = None
        self._series: SeriesForwarder | None = None
        self._step: Any | None = None
        self._stage: str | None = None
        self._per_batch = False
        self._first_epoch = False

    def _begin(self, stage: str) -> None:
        global _stage_steps, _fitting
        if self._step is not None:
            if self._stage == "fit" and stage != "fit":
                return  # evaluate() inside fit(): validation is part of the fit step
            # a stage that never ended (interrupted; Keras has no hook for errors)
            self.abort(RuntimeError(f"{self._stage} ended without Keras reporting its end"))
        if stage != "fit" and (_fitting or _stage_steps >= MAX_STAGE_STEPS):
            return
        run = run_to_report(self._explicit_run)
        if run is None:
            return
        if self._run is not run:
            self._run, self._series = run, SeriesForwarder(run)
        params = self.params or {}
        steps, epochs = params.get("steps"), params.get("epochs")
        self._per_batch = isinstance(steps, int) and steps > 0
        if stage == "fit":
            total = steps * epochs if self._per_batch and isinstance(epochs, int) else epochs
            unit = "batch" if self._per_batch else "epoch"
            self._log_params(epochs, steps)
            self._first_epoch = True
            _fitting += 1
        else:
            total, unit = (steps if self._per_batch else None), "batch"
            _stage_steps += 1
        self._step = open_step(
            run, stage, total=total if isinstance(total, int) else None, unit=unit
        )
        self._stage = stage

    def abort(self, error: BaseException) -> None:
        """The stage raised (or never ended): end its step with ``error``."""
        global _fitting
        step, stage, self._step, self._stage = self._step, self._stage, None, None
        if step is not None:
            if stage == "fit":
                _fitting = max(0, _fitting - 1)
            close_step(step, error)

    def _log_params(self, epochs: Any, steps: Any) -> None:
        """``fit``'s epochs and steps, and the optimizer's plain settings."""
        params: dict[str, Any] = {"epochs": epochs, "steps_per_epoch": steps}
        optimizer = getattr(self.model, "optimizer", None)
        try:
            config = optimizer.get_config() if optimizer is not None else {}
        except Exception:  # a custom optimizer without a config
            config = {}
        for key, value in config.items():
            if isinstance(value, (str, bool)) or number(value) is not None:
                params["optimizer" if key == "name" else f"optimizer.{key}"] = _short(value)
        params = {k: v for k, v in params.items() if v is not None}
        if params and self._run is not None:
            self._run.log_params(params)

    def _end(self, stage: str, logs: Any = None) -> None:
        global _fitting
        if self._stage != stage or self._step is None:
            return
        step, self._step, self._stage = self._step, None, None
        if stage == "fit":
            _fitting = max(0, _fitting - 1)
        try:
            if logs and stage != "fit" and self._series is not None:
                self._series.forward({f"{stage}_{k}": v for k, v in logs.items()}, None)
        finally:
            close_step(step)

    def on_train_begin(self, logs: Any = None) -> None:
        self._begin("fit")

    def on_train_end(self, logs: Any = None) -> None:
        self._end("fit")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._per_batch and self._stage == "fit":
            self._step.advance()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self._stage == "fit" and self._first_epoch:
            self._first_epoch = False
            epochs = (self.params or {}).get("epochs")
            if epoch and isinstance(epochs, int):  # fit(initial_epoch=...) resumes
                per = self._step.total // epochs if self._per_batch and self._step.total else 1
                self._step.set_total(per * max(0, epochs - epoch))

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self._stage != "fit":
            return
        if not self._per_batch:
            self._step.advance()
        if logs and self._series is not None:
            self._series.forward(dict(logs), epoch)

    def on_test_begin(self, logs: Any = None) -> None:
        self._begin("evaluate")

    def on_test_end(self, logs: Any = None) -> None:
        self._end("evaluate", logs)

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._stage == "evaluate":
            self._step.advance()

    def on_predict_begin(self, logs: Any = None) -> None:
        self._begin("predict")

    def on_predict_end(self, logs: Any = None) -> None:
        self._end("predict")

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._stage == "predict":
            self._step.advance()


def _short(value: Any) -> Any:
    """A float32 setting as it was written (``0.05``, not ``0.05000000074505806``)."""
    if isinstance(value, float) and math.isfinite(value):
        try:
            as_float32 = struct.unpack("f", struct.pack("f", value))[0]
        except OverflowError:  # beyond float32: not a float32 setting
            return value
        if as_float32 == value:
            return float(f"{value:.7g}")
    return value


def _with_callback(method: Any) -> Any:
    """``method`` (``Model.fit``...) with the callback added to its ``callbacks``."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ours: list[OtelTrackerCallback] = []
        try:
            bound = signature.bind_partial(*args, **kwargs)
            given = bound.arguments.get("callbacks")
            # fit() passes evaluate() its own CallbackList: that already has ours
            if given is None or isinstance(given, (list, tuple)):
                callbacks = list(given or [])
                ours = [c for c in callbacks if isinstance(c, OtelTrackerCallback)]
                if not ours:
                    ours = [OtelTrackerCallback()]
                    bound.arguments["callbacks"] = [*callbacks, *ours]
                    args, kwargs = bound.args, bound.kwargs
        except Exception as exc:  # a call Keras will reject itself: leave it to Keras
            logger.debug("otel-tracker: Keras call not instrumented: %s", exc)
        try:
            return method(*args, **kwargs)
        except BaseException as exc:  # Keras has no hook for a failing fit(): end its step
            abort_all(ours, exc)
            raise

    setattr(wrapper, ORIGINAL, method)
    return wrapper


def auto_attach(module: ModuleType) -> tuple[str, ...]:
    """Add the callback to every ``Model.fit``/``evaluate``/``predict`` call."""
    model = _framework.Model
    for name in ("fit", "evaluate", "predict"):
        method = getattr(model, name)
        if not is_patched(method):
            setattr(model, name, _with_callback(method))
    return ("keras",)
