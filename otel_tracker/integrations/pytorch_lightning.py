"""PyTorch Lightning as the ``pytorch_lightning`` package: the same callback as
:mod:`otel_tracker.integrations.lightning`, on that package's ``Callback``.

>>> trainer = pl.Trainer(callbacks=[OtelTrackerCallback()])  # doctest: +SKIP
"""

from __future__ import annotations

from types import ModuleType

from ._lightning import attach_to_trainer, callback_class

try:
    import pytorch_lightning as _framework
except ImportError as exc:
    raise ImportError(
        "otel_tracker.integrations.pytorch_lightning needs it: pip install pytorch-lightning"
    ) from exc

OtelTrackerCallback = callback_class(_framework.Callback, __name__)


def auto_attach(module: ModuleType) -> tuple[str, ...]:
    """Give every ``Trainer`` the callback; the module prefixes whose tqdm bars it reports."""
    attach_to_trainer(_framework.Trainer, OtelTrackerCallback)
    return ("pytorch_lightning", "lightning")
