"""A sample is a list of points: metric name, value, attributes, unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Point:
    """One measured value of one metric (with its OTel-style attributes)."""

    name: str
    value: float
    unit: str
    attributes: Attributes = ()
    monotonic: bool = False  # a running total: exported as a counter (Prometheus ``_total``)
    summarize: bool = True  # False: not part of the run/step min/mean/max/p95

    @property
    def key(self) -> str:
        """``name{attr=value,...}``: the series this point belongs to."""
        if not self.attributes:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in self.attributes) + "}"


class Unavailable(dict[str, str]):
    """metric (or group) → why it could not be measured; each reason kept once."""

    def note(self, what: str, reason: str) -> None:
        self.setdefault(what, reason)


def merged_details(samplers: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """What the samplers report beyond points (e.g. ``telemetry.processes``), merged."""
    found: dict[str, Any] = {}
    for _, sampler in samplers:
        details = getattr(sampler, "details", None)
        if details is not None:
            found.update(details())
    return found
