"""Params as a redacted JSON-safe copy: objects are walked before anything becomes text.

A config object's repr shows its fields as Python source (``Namespace(hf_token='T')``),
so redacting only its text would depend on what its ``__repr__`` prints. Mappings,
dataclasses, ``argparse.Namespace``/``SimpleNamespace``, named tuples, attrs classes,
pydantic models and sequences/sets/deques are walked field by field, each name
judged by :mod:`otel_tracker.redact.names`; anything else becomes its ``str()``
with its own secret-named attributes scrubbed and then the text rules applied.

The walk is bounded: ``MAX_DEPTH`` levels, ``MAX_VALUES`` values in all, a cycle
becomes a placeholder. It never raises.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections import deque
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from ..values import clean_text
from .known import REDACTED, remember_secret
from .names import hides, names_a_commit
from .text import redact_text

MAX_DEPTH = 20
MAX_VALUES = 1_000_000
CYCLE = "<cycle>"
TOO_DEEP = "<nested too deep>"
TRUNCATED = "<more values not recorded>"


def redact_object(value: Any, key: str | None = None) -> Any:
    """``value`` (found under ``key``) as JSON-like data with its secrets hidden."""
    return _Walk().value(value, key, 0)


class _Walk:
    def __init__(self) -> None:
        self.count = 0
        self.open: set[int] = set()  # ids of the containers on the current path

    def value(self, value: Any, key: str | None, depth: int) -> Any:
        self.count += 1
        if key is not None and hides(key, value):
            remember_secret(value)
            return REDACTED
        if isinstance(value, enum.Enum):  # stands for its value (an IntEnum too)
            value = value.value
        if value is None or isinstance(value, (bool, str, int, float)):
            if isinstance(value, str):
                text = clean_text(str(value))
                return redact_text(text, keep_hex=key is not None and names_a_commit(key))
            return value
        if isinstance(value, numbers.Number) and not isinstance(value, complex):
            return _number(value)
        fields = _fields(value)
        if fields is None and not isinstance(value, (list, tuple, set, frozenset, deque)):
            return _text_of(value)
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        if id(value) in self.open:
            return CYCLE
        self.open.add(id(value))
        try:
            if fields is not None:
                return self._mapping(fields, depth)
            if isinstance(value, (set, frozenset)):  # in a stable order
                value = sorted(value, key=_safe_str)
            return self._sequence(value, depth)
        except Exception:  # a mapping or sequence that fails while iterated
            return _text_of(value)
        finally:
            self.open.discard(id(value))

    def _mapping(self, fields: Iterable[tuple[Any, Any]], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in fields:
            if self.count >= MAX_VALUES:
                out[TRUNCATED] = True
                break
            name = clean_text(_safe_str(k))
            out[redact_text(name)] = self.value(v, name, depth + 1)
        return out

    def _sequence(self, items: Iterable[Any], depth: int) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if self.count >= MAX_VALUES:
                out.append(TRUNCATED)
                break
            out.append(self.value(item, None, depth + 1))
        return out


def _fields(value: Any) -> Iterable[tuple[Any, Any]] | None:
    """A structured object's (name, value) pairs, or ``None`` for anything else."""
    if isinstance(value, Mapping):
        return value.items()
    kind = type(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple
        return value._asdict().items()
    if isinstance(value, SimpleNamespace) or kind.__name__ == "Namespace":
        return vars(value).items()  # argparse.Namespace too
    attrs = getattr(kind, "__attrs_attrs__", None)
    if attrs is not None:
        return [(a.name, getattr(value, a.name, None)) for a in attrs]
    model_fields = getattr(kind, "model_fields", None)  # pydantic 2
    if isinstance(model_fields, Mapping) and not isinstance(value, type):
        return [(name, getattr(value, name, None)) for name in model_fields]
    return None


def _number(value: Any) -> Any:
    """numpy scalars, ``Fraction``, ``Decimal`` as plain numbers (``jsonable`` keeps them)."""
    try:
        if isinstance(value, numbers.Integral):
            return int(value)
        number = float(value)
    except Exception:
        return _text_of(value)
    return number if math.isfinite(number) else str(number)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _text_of(value: Any) -> str:
    """An unstructured object's text, with the values of its secret-named attributes
    scrubbed first (its ``__repr__`` may print them in a form no pattern knows)."""
    text = clean_text(_safe_str(value))
    for name, attribute in _attributes(value):
        if isinstance(attribute, str) and attribute and hides(str(name), attribute):
            text = text.replace(attribute, REDACTED)
    return redact_text(text)


def _attributes(value: Any) -> list[tuple[str, Any]]:
    """An object's own attributes, from its ``__dict__`` or its classes' ``__slots__``
    (at most 1,000: a scrub, not a walk)."""
    try:
        return list(vars(value).items())[:1000]
    except TypeError:
        pass
    names = []
    for kind in type(value).__mro__:
        slots = kind.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [(name, getattr(value, name, None)) for name in names[:1000]]


def redact_value(value: Any, key: str | None = None) -> Any:
    """A JSON-safe, redacted copy of a param value (:func:`redact_object`)."""
    return redact_object(value, key)
