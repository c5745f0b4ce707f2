"""Hugging Face ``transformers.Trainer``: training and evaluation as steps, the
optimizer steps as progress, what the Trainer logs as series, ``TrainingArguments``
as params (tokens redacted), the checkpoints left at the end of training as artifacts (the best one marked).

>>> trainer = Trainer(model, args, callbacks=[OtelTrackerCallback()])  # doctest: +SKIP

Under ``otel-tracker run --auto`` every ``Trainer`` (and subclass) gets one without
code changes. Only the main process (``state.is_world_process_zero``) reports.
The ``train`` step *follows* ``state.global_step`` / ``state.max_steps``: nothing is
hooked per optimizer step. An ``evaluate()`` or ``predict()`` outside training is a
step of its own, counted in batches; evaluation during training is part of ``train``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
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
from .patching import ORIGINAL, after_init, is_patched

try:
    import transformers as _framework
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
except ImportError as exc:
    raise ImportError(
        "otel_tracker.integrations.transformers needs it: pip install transformers"
    ) from exc


@guarded
class OtelTrackerCallback(_framework.TrainerCallback):  # type: ignore[misc]
    """Reports a ``Trainer`` to otel-tracker; see :mod:`otel_tracker.integrations.transformers`."""

    def __init__(self, run: Any | None = None) -> None:
        self._explicit_run = run
        self._run: Any | None = None
        self._series: SeriesForwarder | None = None
        self._train: Any | None = None
        self._eval: Any | None = None
        self._train_started = 0.0

    def _ready(self, state: Any) -> bool:
        if not getattr(state, "is_world_process_zero", True):
            return False
        if self._run is None or self._run.ended:
            self._run = run_to_report(self._explicit_run)
            self._series = SeriesForwarder(self._run) if self._run is not None else None
        return self._run is not None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._train is not None:
            # the same train() again (auto_find_batch_size retries with a new state)
            self._train.follow(lambda: (state.global_step, state.max_steps or None))
            return
        if not self._ready(state):
            return
        self._run.log_params(_arguments(args))
        self._train_started = time.time()
        step = open_step(self._run, "train", unit="step")
        step.follow(lambda: (state.global_step, state.max_steps or None))
        self._train = step

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step, self._train = self._train, None
        if step is None:
            return
        try:
            self._add_checkpoints(args, state)
        finally:
            close_step(step)

    def abort(self, error: BaseException) -> None:
        """``train()``/``evaluate()`` raised: end what is open with ``error``."""
        for name in ("_eval", "_train"):
            step = getattr(self, name)
            setattr(self, name, None)
            if step is not None:
                close_step(step, error)

    def _add_checkpoints(self, args: Any, state: Any) -> None:
        """The checkpoint folders still there when training ends (``save_total_limit``
        deletes older ones), the best one marked."""
        output = os.path.abspath(str(getattr(args, "output_dir", "") or "."))
        best = getattr(state, "best_model_checkpoint", None)
        best = os.path.abspath(best) if best else None
        try:
            names = sorted(os.listdir(output))
        except OSError:
            return
        for name in names:
            path = os.path.join(output, name)
            if not name.startswith(f"{PREFIX_CHECKPOINT_DIR}-") or not os.path.isdir(path):
                continue
            try:  # only this training's: an output_dir may hold an earlier run's
                fresh = os.stat(path).st_mtime >= self._train_started - 1
            except OSError:
                continue
            if fresh:
                self._run.add_artifact(path, kind="checkpoint", best=path == best)

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._train is not None:
            return  # evaluation during training is part of the train step
        if self._eval is None:
            if not self._ready(state):
                return
            loader = kwargs.get("eval_dataloader")
            try:
                total = len(loader) if loader is not None else None
            except TypeError:  # an iterable dataset has no length
                total = None
            self._eval = open_step(self._run, _evaluation_kind(), total=total, unit="batch")
        self._eval.advance()

    def _end_evaluation(self) -> None:
        step, self._eval = self._eval, None
        if step is not None:
            close_step(step)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._end_evaluation()

    def on_predict(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._end_evaluation()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if logs and self._ready(state) and self._series is not None:
            self._series.forward(logs, getattr(state, "global_step", None))


def _arguments(args: Any) -> dict[str, Any]:
    """The ``TrainingArguments`` that are plain values (``to_dict`` masks tokens)."""
    try:
        found = args.to_dict()
    except Exception:  # another arguments class
        found = dict(vars(args))
    return {
        k: v
        for k, v in found.items()
        if not k.startswith("_")
        and v not in (None, "")
        and (isinstance(v, str) or number(v) is not None or isinstance(v, bool))
    }


def _evaluation_kind() -> str:
    """``predict`` when called from ``Trainer.predict``, else ``evaluate``."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "predict" and frame.f_globals.get("__name__", "").startswith(
            "transformers."
        ):
            return "predict"
        frame = frame.f_back  # type: ignore[assignment]
    return "evaluate"


def auto_attach(module: ModuleType) -> tuple[str, ...]:
    """Give every ``Trainer`` the callback, and end its steps with the error when
    ``train``/``evaluate``/``predict`` raise (the Trainer has no hook for that); the
    module prefixes whose tqdm bars it reports."""

    def attach(trainer: Any) -> None:
        if not any(isinstance(c, OtelTrackerCallback) for c in trainer.callback_handler.callbacks):
            trainer.add_callback(OtelTrackerCallback())

    after_init(_framework.Trainer, attach, "Trainer")
    for name in ("train", "evaluate", "predict"):
        method = getattr(_framework.Trainer, name)
        if not is_patched(method):
            setattr(_framework.Trainer, name, _ending_on_error(method))
    return ("transformers", "accelerate")


def _ending_on_error(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except BaseException as exc:
            callbacks = getattr(getattr(self, "callback_handler", None), "callbacks", [])
            abort_all([c for c in callbacks if isinstance(c, OtelTrackerCallback)], exc)
            raise

    setattr(wrapper, ORIGINAL, method)
    return wrapper
