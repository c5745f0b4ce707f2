"""How a run's params become span attributes, for its own spans and every mirror."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import semconv

# Params on the run span: a bounded subset. The SDK keeps 128 attributes a span by
# default and drops the oldest past that; the manifest keeps every param.
MAX_PARAM_ATTRIBUTES = 64
MAX_PARAM_ATTRIBUTE_CHARS = 1024


def param_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    """The first :data:`MAX_PARAM_ATTRIBUTES` params (flattened, long strings cut) as
    span attributes, and how many were left out."""
    flat = flat_attributes(semconv.PARAM_PREFIX, params)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if len(out) == MAX_PARAM_ATTRIBUTES:
            out[semconv.PARAMS_OMITTED] = len(flat) - MAX_PARAM_ATTRIBUTES
            break
        if isinstance(value, str) and len(value) > MAX_PARAM_ATTRIBUTE_CHARS:
            value = value[: MAX_PARAM_ATTRIBUTE_CHARS - 1] + "…"
        elif isinstance(value, list):
            value = [v[:MAX_PARAM_ATTRIBUTE_CHARS] for v in value[:MAX_PARAM_ATTRIBUTES]]
        out[key] = value
    return out


def flat_attributes(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as span attributes: nested keys dotted, only OTel-compatible values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_attributes(name + ".", value))
        elif isinstance(value, (bool, int, float, str)) or (
            isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        ):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out
