"""The PyTorch Lightning callback, for ``lightning.pytorch`` and ``pytorch_lightning`` alike.

The two packages have separate ``Callback`` classes, so the hooks live in
:class:`LightningReporter` and :func:`callback_class` mixes them into either.

* ``fit``, ``validate``, ``test`` and ``predict`` are steps; their batches are the
  progress, with totals from the trainer's own batch counts (``max_epochs`` times
  the batches per epoch, capped by ``max_steps``). Validation inside ``fit`` is part
  of ``fit``.
* What ``self.log`` put in ``trainer.callback_metrics`` becomes series at Lightning's
  own cadence (``log_every_n_steps``, and each epoch's end), keyed by ``global_step``:
  a value is read (``float()``, a device sync) no more often than Lightning's
  loggers read it.
* ``hparams`` (``save_hyperparameters()``, the module's and the datamodule's) become
  params; the checkpoints ``ModelCheckpoint`` kept become artifacts when the stage
  ends, the best one marked ``best``.
* Only global rank 0 reports (in DDP every rank runs the callback).
"""

from __future__ import annotations

import math
import os
from typing import Any

from .metrics import SeriesForwarder, close_step, guarded, open_step, run_to_report
from .patching import after_init

# TrainerFn's values, which trainer.state.fn holds while a stage runs
_STAGES = {"fit": "fit", "validate": "validate", "test": "test", "predict": "predict"}


@guarded
class LightningReporter:
    """Hooks of the callback; see the module's docstring."""

    def __init__(self, run: Any | None = None) -> None:
        super().__init__()
        self._explicit_run = run
        self._run: Any | None = None
        self._step: Any | None = None
        self._series: SeriesForwarder | None = None
        self._logged_at: int | None = None

    # -- stages -------------------------------------------------------------------------
    def _begin(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if not getattr(trainer, "is_global_zero", True) or self._step is not None:
            return
        run = run_to_report(self._explicit_run)
        if run is None:
            return
        self._run, self._series, self._logged_at = run, SeriesForwarder(run), None
        self._log_hparams(trainer, pl_module)
        self._step = open_step(run, stage, unit="batch")

    def _end(self, trainer: Any, error: BaseException | None = None) -> None:
        step, self._step = self._step, None
        if step is None:
            return
        try:
            self._log_metrics(trainer)
            self._add_checkpoints(trainer)
        finally:
            close_step(step, error)

    def _stage(self, trainer: Any) -> str:
        fn = getattr(getattr(trainer, "state", None), "fn", None)
        return _STAGES.get(str(getattr(fn, "value", fn)), "fit")

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin(trainer, pl_module, "fit")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._end(trainer)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self._stage(trainer) == "validate":
            self._begin(trainer, pl_module, "validate")
            self._set_total(trainer, "num_val_batches")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self._stage(trainer) == "validate":
            self._end(trainer)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin(trainer, pl_module, "test")
        self._set_total(trainer, "num_test_batches")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._end(trainer)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin(trainer, pl_module, "predict")
        self._set_total(trainer, "num_predict_batches")

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._end(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._end(trainer, exception)

    # -- progress and metrics -------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._step is None:
            return
        per_epoch = _count(getattr(trainer, "num_training_batches", None))
        epochs = _count(getattr(trainer, "max_epochs", None))
        # a fit resumed from a checkpoint (or a second fit) starts where the last ended
        epoch = _count(getattr(trainer, "current_epoch", 0)) or 0
        done_steps = _count(getattr(trainer, "global_step", 0)) or 0
        accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1) or 1))
        totals = []
        if per_epoch is not None and epochs is not None:
            totals.append(per_epoch * max(0, epochs - epoch))
        max_steps = _count(getattr(trainer, "max_steps", None))
        if max_steps:
            totals.append(max(0, max_steps - done_steps) * accumulate)
        if totals:
            self._step.set_total(min(totals), "batch")

    def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if self._step is None:
            return
        self._step.advance()
        # Lightning's own cadence: every log_every_n_steps optimizer steps
        every = max(1, int(getattr(trainer, "log_every_n_steps", 50) or 50))
        step = getattr(trainer, "global_step", 0)
        if step % every == 0 and step != self._logged_at:
            self._logged_at = step
            self._log_metrics(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._step is not None:
            self._log_metrics(trainer)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._step is not None and not getattr(trainer, "sanity_checking", False):
            self._log_metrics(trainer)

    def _count_batch(self, *args: Any, **kwargs: Any) -> None:
        if self._step is not None and self._step.name != "fit":
            self._step.advance()

    on_validation_batch_end = _count_batch
    on_test_batch_end = _count_batch
    on_predict_batch_end = _count_batch

    def _set_total(self, trainer: Any, attribute: str) -> None:
        if self._step is None:
            return
        counts = getattr(trainer, attribute, None)
        if isinstance(counts, (list, tuple)):
            found = [_count(c) for c in counts]
            if found and all(c is not None for c in found):
                self._step.set_total(sum(c for c in found if c is not None), "batch")

    def _log_metrics(self, trainer: Any) -> None:
        metrics = getattr(trainer, "callback_metrics", None)
        if self._series is not None and metrics:
            step = getattr(trainer, "global_step", None)
            self._series.forward(dict(metrics), step, changed_only=True)

    def _log_hparams(self, trainer: Any, pl_module: Any) -> None:
        params: dict[str, Any] = {}
        datamodule = getattr(trainer, "datamodule", None)
        for owner in (datamodule, pl_module):
            hparams = getattr(owner, "hparams", None) if owner is not None else None
            if hparams:
                params.update(dict(hparams))
        if params and self._run is not None:
            self._run.log_params(params)

    def _add_checkpoints(self, trainer: Any) -> None:
        """Register the checkpoints the checkpoint callbacks kept, the best one marked.

        At a stage's end only: ``ModelCheckpoint`` deletes what falls out of its top
        k, and a record of files that are gone would mislead. Registering a path
        again updates it, so a later fit's best is the one marked."""
        if self._run is None:
            return
        for callback in getattr(trainer, "checkpoint_callbacks", None) or []:
            kept = list(getattr(callback, "best_k_models", {}) or {})
            kept.append(getattr(callback, "last_model_path", "") or "")
            best = getattr(callback, "best_model_path", "") or ""
            best = os.path.abspath(best) if best else None
            for path in sorted({os.path.abspath(p) for p in kept if p}):
                if os.path.exists(path):
                    self._run.add_artifact(path, kind="checkpoint", best=path == best)

    def __getstate__(self) -> dict[str, Any]:
        """Without the run (a process's own): ``ddp_spawn`` and Ray pickle callbacks."""
        state = dict(self.__dict__)
        for key in ("_explicit_run", "_run", "_step", "_series"):
            state[key] = None
        return state


def _count(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if 0 <= number < math.inf else None


def callback_class(base: type, module: str) -> type:
    """``OtelTrackerCallback`` for one Lightning package: its ``Callback`` plus our hooks."""
    return type(
        "OtelTrackerCallback",
        (LightningReporter, base),
        {
            "__doc__": "Reports a Lightning trainer's stages, progress, logged metrics, "
            "hyperparameters and checkpoints to otel-tracker (see "
            ":mod:`otel_tracker.integrations.lightning`).",
            "__module__": module,
        },
    )


def attach_to_trainer(trainer_class: type, callback: type) -> None:
    """Every ``Trainer`` made from now on gets ``callback()`` unless it already has one."""

    def attach(trainer: Any) -> None:
        if not any(isinstance(c, LightningReporter) for c in trainer.callbacks):
            trainer.callbacks.append(callback())

    after_init(trainer_class, attach, "Lightning trainer")
