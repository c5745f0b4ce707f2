"""Numbers a pipeline hands to the tracker: numpy's scalars count, bools do not.

ML code passes ``np.float32`` losses, ``np.int64`` counts and ``torch`` items
everywhere; ``isinstance(x, (int, float))`` refuses most of them. The
:mod:`numbers` ABCs (which numpy registers its scalars with) accept them, and
every value is converted to a plain ``int``/``float`` before it is stored, so
the manifest, span attributes and metrics only ever see Python numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_real(value: object) -> bool:
    """A real number: ``int``, ``float``, numpy's scalars, ``Fraction``; not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_whole(value: object) -> bool:
    """An integer: ``int`` or numpy's integer scalars; not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def item_count(value: Any) -> int:
    """A step's live counter as the manifest records it: whole items.

    ``advance()`` adds whatever it is given (it is the hot path: no checks), so
    the counter may be a numpy integer or a float; the record keeps ``int``.
    """
    if type(value) is int:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if math.isfinite(number) else 0
