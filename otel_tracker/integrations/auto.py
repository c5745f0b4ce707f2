"""``run --auto``'s integrations: each attached when the program imports its package.

``OTEL_TRACKER_AUTO_INTEGRATIONS`` chooses them: unset or ``true`` all, ``false``
none, or a list such as ``tqdm,keras``. A framework's integration reports its
stages itself, so tqdm bars its package creates (Lightning's and the Trainer's own
progress bars) are left to it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from types import ModuleType

from ..config import auto_integrations
from .hooks import when_imported
from .process_run import ProcessRun

logger = logging.getLogger(__name__)

# integration -> the module whose import attaches it (its Trainer or Model defined)
FRAMEWORKS: dict[str, str] = {
    "lightning": "lightning.pytorch",
    "pytorch_lightning": "pytorch_lightning",
    "transformers": "transformers.trainer",
    "keras": "keras",
}
INTEGRATIONS = ("tqdm", *FRAMEWORKS)


def attach_integrations(
    tracked: ProcessRun, *, environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """Wait for the enabled integrations' packages; the names enabled."""
    enabled = auto_integrations(INTEGRATIONS, environ)
    bars = None
    if "tqdm" in enabled:
        from . import tqdm as tqdm_integration

        bars = tqdm_integration.capture(program_step=tracked.step)
        tracked.before_end(bars.finish)

    def attach(name: str, _: ModuleType) -> None:
        integration = importlib.import_module(f"{__package__}.{name}")
        prefixes = integration.auto_attach(_)
        if bars is not None:
            bars.deferred_modules.update(prefixes)
        logger.debug("otel-tracker: %s integration attached", name)

    for name, trigger in FRAMEWORKS.items():
        if name in enabled:
            when_imported(trigger, lambda module, name=name: attach(name, module))
    return enabled
