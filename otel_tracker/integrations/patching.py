"""Wrapping a framework's own classes, once, reversibly and without breaking them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

ORIGINAL = "_otel_tracker_original"


def after_init(cls: type, attach: Callable[[Any], None], what: str) -> None:
    """Call ``attach(instance)`` after every ``cls(...)`` (subclasses included), once
    however often this is called; a failing ``attach`` is logged, never raised."""
    original = cls.__init__
    if getattr(original, ORIGINAL, None) is not None:
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            attach(self)
        except Exception as exc:
            logger.warning("otel-tracker: %s not instrumented: %s", what, exc)

    setattr(__init__, ORIGINAL, original)
    __init__.__doc__ = original.__doc__
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


def is_patched(function: Any) -> bool:
    return getattr(function, ORIGINAL, None) is not None
