"""PyTorch Lightning (``lightning.pytorch``): stages as steps, batches as progress,
``self.log`` as series, hyperparameters as params, checkpoints as artifacts.

>>> trainer = L.Trainer(callbacks=[OtelTrackerCallback()])  # doctest: +SKIP

Under ``otel-tracker run --auto`` every ``Trainer`` gets one without code changes.
For ``pytorch_lightning``, use :mod:`otel_tracker.integrations.pytorch_lightning`.
"""

from __future__ import annotations

from types import ModuleType

from ._lightning import attach_to_trainer, callback_class

try:
    import lightning.pytorch as _framework
except ImportError as exc:
    raise ImportError(
        "otel_tracker.integrations.lightning needs Lightning: pip install lightning"
    ) from exc

OtelTrackerCallback = callback_class(_framework.Callback, __name__)


def auto_attach(module: ModuleType) -> tuple[str, ...]:
    """Give every ``Trainer`` the callback; the module prefixes whose tqdm bars it reports."""
    attach_to_trainer(_framework.Trainer, OtelTrackerCallback)
    return ("lightning",)
