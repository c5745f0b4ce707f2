"""Values a pipeline hands to the tracker: numbers (numpy's scalars count, bools
do not) and names (text that must survive UTF-8 and the schema).

ML code passes ``np.float32`` losses, ``np.int64`` counts and ``torch`` items
everywhere; ``isinstance(x, (int, float))`` refuses most of them. The
:mod:`numbers` ABCs (which numpy registers its scalars with) accept them, and
every value is converted to a plain ``int``/``float`` before it is stored, so
the manifest, span attributes and metrics only ever see Python numbers.
"""

from __future__ import annotations

import enum
import math
import numbers
import os
from typing import Any

from .errors import ConfigError


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


def clean_text(text: str) -> str:
    """``text`` as it can be written as UTF-8: a byte that was not valid UTF-8 where
    it came from (``os.fsdecode`` gives ``\\udcXX`` for it: a file name, an argv
    item, a working directory) becomes the four characters ``\\xXX``, any other
    lone surrogate ``\\uXXXX``. Text that is already clean is returned as is."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def clean_texts(value: Any) -> Any:
    """A copy of a JSON-like document with every string (keys too) :func:`clean_text`-ed."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_texts(k): clean_texts(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_texts(v) for v in value]
    return value


def checked_name(value: Any, what: str) -> str | None:
    """A name the user gave (scenario, kind, unit, artifact kind...) as clean text,
    ``None`` for ``None``; an enum member stands for its value (its name when the
    value is not text), a path for its text. Anything else is a ``ConfigError``:
    a number there is a mistake the schema would make every reader refuse."""
    if value is None:
        return None
    if isinstance(value, enum.Enum) and not isinstance(value, str):
        value = value.value if isinstance(value.value, str) else value.name
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
        if isinstance(value, bytes):
            value = os.fsdecode(value)
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    return clean_text(str(value))


def checked_whole(value: Any, what: str) -> int | None:
    """A non-negative whole number (an epoch, a count) as ``int``; ``None`` for ``None``."""
    if value is None:
        return None
    if not is_whole(value) or value < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def format_bytes(n: float) -> str:
    """``532 B``, ``4.2 kB``, ``18.0 MB``, ``1.3 GB`` (decimal units, as ``du --si``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


_BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9}
_BYTE_UNITS |= {"gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str) -> int:
    """Bytes in ``500``, ``100MB``, ``1.5G`` or ``2GiB`` (``ValueError`` otherwise)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _BYTE_UNITS:
        raise ValueError(f"bad size {text!r}: use e.g. 500MB, 2GB or 1GiB")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])
